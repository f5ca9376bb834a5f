//! NOAA OFS object keys: what a key says about the model run, and which
//! reference keys the pipeline writes for it.
//!
//! The naming rules are those of `ofs/README.md` section 1.3. NOS renamed
//! its files on 2024-09-01 and the archive bucket was backfilled unevenly, so
//! both name forms are accepted in every folder form. The bucket also holds
//! forcing, restart and log files: those are [`Parsed::Skip`] with a reason
//! for the logs, not errors, because they are expected traffic. Errors are
//! reserved for keys that claim to be model output but are inconsistent,
//! which points at a bug upstream or a hostile producer.
//!
//! Hand-parsed (no regex): the grammar is a fixed sequence of dot-separated
//! tokens, and hand-parsing lets each failure name the offending token.

use std::fmt;

use thiserror::Error;

use crate::key::clip;

/// The part of a name after the model that says what a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Fields,
    /// `2ds`: surface-only fields.
    TwoDs,
    RegularGrid,
    Stations,
}

impl Kind {
    /// The token as it appears in file names.
    pub fn token(self) -> &'static str {
        match self {
            Kind::Fields => "fields",
            Kind::TwoDs => "2ds",
            Kind::RegularGrid => "regulargrid",
            Kind::Stations => "stations",
        }
    }

    fn from_token(s: &str) -> Option<Kind> {
        match s {
            "fields" => Some(Kind::Fields),
            "2ds" => Some(Kind::TwoDs),
            "regulargrid" => Some(Kind::RegularGrid),
            "stations" => Some(Kind::Stations),
            _ => None,
        }
    }
}

/// Which output time step a file holds. Station files hold a whole run
/// segment, so they carry no hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hour {
    /// `nHHH`
    Nowcast(u16),
    /// `fHHH`
    Forecast(u16),
    StationsNowcast,
    StationsForecast,
}

impl Hour {
    fn token(self) -> String {
        match self {
            Hour::Nowcast(h) => format!("n{h:03}"),
            Hour::Forecast(h) => format!("f{h:03}"),
            Hour::StationsNowcast => "nowcast".to_owned(),
            Hour::StationsForecast => "forecast".to_owned(),
        }
    }
}

/// The file-name scheme; aggregate keys follow the scheme of their inputs so
/// that old and new runs never collide in the destination bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layout {
    /// `nos.{ofs}.{kind}.{n|f}{HHH}.{YYYYMMDD}.t{CC}z.nc` (before 2024-09-01)
    Legacy,
    /// `{ofs}.t{CC}z.{YYYYMMDD}.{kind}.{n|f}{HHH}.nc`
    Current,
}

/// Where the file sat. Kept so a key can be rebuilt (and so logs can tell
/// the two buckets apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Folder {
    /// Just a file name: also what [`parse_single_ref_key`] returns, since a
    /// reference key does not record its source folder.
    Bare,
    /// `{ofs}.{YYYYMMDD}/` (noaa-ofs-pds)
    Daily,
    /// `{ofs}/netcdf/{YYYYMM}/` (noaa-nos-ofs-pds, up to 2024)
    ArchiveMonthly,
    /// `{ofs}/netcdf/{YYYY}/{MM}/{DD}/` (noaa-nos-ofs-pds, from 2025)
    ArchiveDaily,
}

/// The numerical model behind an OFS; it decides the aggregation's concat
/// dimension and how the HDF5 variables are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelFamily {
    Roms,
    Fvcom,
    Schism,
    Unknown,
}

impl ModelFamily {
    /// From the OFS name. `wcofs_da`/`wcofs_free` are WCOFS variants
    /// (README 1.4), so they are ROMS too.
    pub fn of(model: &str) -> ModelFamily {
        match model {
            "cbofs" | "dbofs" | "tbofs" | "gomofs" | "ciofs" | "wcofs" => ModelFamily::Roms,
            m if m.starts_with("wcofs_") => ModelFamily::Roms,
            "ngofs2" | "ngofs" | "sscofs" | "sfbofs" | "leofs" | "lmhofs" | "loofs" | "lsofs" => {
                ModelFamily::Fvcom
            }
            "loofs2" | "secofs" => ModelFamily::Schism,
            m if m.starts_with("stofs") => ModelFamily::Schism,
            _ => ModelFamily::Unknown,
        }
    }

    /// The record dimension to concatenate along; `None` when unknown, so a
    /// caller must read the file rather than guess.
    pub fn time_dimension(self) -> Option<&'static str> {
        match self {
            ModelFamily::Roms => Some("ocean_time"),
            ModelFamily::Fvcom | ModelFamily::Schism => Some("time"),
            ModelFamily::Unknown => None,
        }
    }
}

/// A proleptic Gregorian calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

impl Date {
    /// `None` for impossible dates (20230230) and for years outside
    /// 1900-9999: no OFS output predates the 2000s, and the four-digit bound
    /// keeps every formatted key the same width.
    pub fn new(year: u16, month: u8, day: u8) -> Option<Date> {
        let ok = (1900..=9999).contains(&year)
            && (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month);
        ok.then_some(Date { year, month, day })
    }

    /// Parses `YYYYMMDD`.
    pub fn parse_yyyymmdd(s: &str) -> Option<Date> {
        if !is_digits(s, 8) {
            return None;
        }
        let year = s.get(0..4)?.parse().ok()?;
        let month = s.get(4..6)?.parse().ok()?;
        let day = s.get(6..8)?.parse().ok()?;
        Date::new(year, month, day)
    }

    pub fn yyyymmdd(self) -> String {
        format!("{:04}{:02}{:02}", self.year, self.month, self.day)
    }

    fn days_since_epoch(self) -> i64 {
        days_from_civil(self.year, self.month, self.day)
    }
}

/// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`); exact for any
/// Gregorian date and cheap enough that no date crate is needed. Total for
/// out-of-range months and days, so a hand-built [`Date`] cannot panic it.
/// Not the `time` crate (in the lock through aws-config): its `Date` is
/// fallible where these ~20 lines are total, and the fuzz crate compiles
/// this file by path with serde_json as its only dependency.
fn days_from_civil(year: u16, month: u8, day: u8) -> i64 {
    let (m, d) = (i64::from(month), i64::from(day));
    let y = i64::from(year) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        // Leap rule taken from the day count itself, so the two cannot disagree.
        2 => u8::try_from(days_from_civil(year, 3, 1) - days_from_civil(year, 2, 1)).unwrap_or(28),
        _ => 0,
    }
}

/// A UTC instant in whole seconds since the Unix epoch. Model times are
/// whole hours, so a full date-time crate would add nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UtcTime(i64);

impl UtcTime {
    pub fn from_unix_seconds(secs: i64) -> UtcTime {
        UtcTime(secs)
    }

    pub fn unix_seconds(self) -> i64 {
        self.0
    }

    /// `2022-09-14T07:00:00Z`.
    pub fn to_iso8601(self) -> String {
        self.to_string()
    }
}

impl fmt::Display for UtcTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hinnant's `civil_from_days`, the inverse of `days_since_epoch`.
        let days = self.0.div_euclid(86_400);
        let sod = self.0.rem_euclid(86_400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            sod / 3600,
            sod / 60 % 60,
            sod % 60
        )
    }
}

/// One model output file, as named by its key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OfsKey {
    /// The OFS name, `[a-z0-9_]+` (e.g. `dbofs`, `ngofs2`, `stofs_3d_atl`).
    pub model: String,
    /// Cycle date, also for nowcast files whose valid times fall on the day
    /// before.
    pub cycle_date: Date,
    /// 0-23.
    pub cycle_hour: u8,
    pub kind: Kind,
    pub hour: Hour,
    pub layout: Layout,
    pub folder: Folder,
}

impl OfsKey {
    pub fn family(&self) -> ModelFamily {
        ModelFamily::of(&self.model)
    }

    /// Start of the forecast: the cycle date and hour in the name.
    pub fn cycle_time(&self) -> UtcTime {
        UtcTime(self.cycle_date.days_since_epoch() * 86_400 + i64::from(self.cycle_hour) * 3600)
    }

    /// The instant a single-hour file describes: `fHHH` is cycle + HHH h,
    /// `nHHH` is cycle − nowcast length + HHH h (so n006 is the cycle time
    /// for a 6 h nowcast). `None` for station files, which span a segment.
    pub fn valid_time(&self) -> Option<UtcTime> {
        let cycle = self.cycle_time().0;
        match self.hour {
            Hour::Forecast(h) => Some(UtcTime(cycle + i64::from(h) * 3600)),
            Hour::Nowcast(h) => Some(UtcTime(
                cycle + (i64::from(h) - i64::from(nowcast_hours(&self.model))) * 3600,
            )),
            Hour::StationsNowcast | Hour::StationsForecast => None,
        }
    }

    /// The canonical file name; equals the parsed name, since parsing accepts
    /// exactly one spelling per field.
    pub fn file_name(&self) -> String {
        let (m, k, h) = (&self.model, self.kind.token(), self.hour.token());
        let (ymd, cc) = (self.cycle_date.yyyymmdd(), self.cycle_hour);
        match self.layout {
            Layout::Legacy => format!("nos.{m}.{k}.{h}.{ymd}.t{cc:02}z.nc"),
            Layout::Current => format!("{m}.t{cc:02}z.{ymd}.{k}.{h}.nc"),
        }
    }

    /// The source object key, rebuilt from the folder form.
    pub fn object_key(&self) -> String {
        let (m, d, name) = (&self.model, self.cycle_date, self.file_name());
        match self.folder {
            Folder::Bare => name,
            Folder::Daily => format!("{m}.{}/{name}", d.yyyymmdd()),
            Folder::ArchiveMonthly => format!("{m}/netcdf/{:04}{:02}/{name}", d.year, d.month),
            Folder::ArchiveDaily => {
                format!(
                    "{m}/netcdf/{:04}/{:02}/{:02}/{name}",
                    d.year, d.month, d.day
                )
            }
        }
    }

    /// Fields are public, so key builders re-check what parsing guaranteed:
    /// an `OfsKey` built by hand must not smuggle a path into an output key.
    fn check(&self) -> Result<(), Error> {
        if !is_model_name(&self.model) {
            return Err(Error::BadModel {
                key: clip(&self.model),
                model: clip(&self.model),
            });
        }
        let d = self.cycle_date;
        if Date::new(d.year, d.month, d.day).is_none() {
            return Err(Error::BadDate {
                key: clip(&self.model),
                token: format!("{:04}{:02}{:02}", d.year, d.month, d.day),
            });
        }
        if self.cycle_hour > 23 {
            return Err(Error::BadCycleHour {
                key: clip(&self.model),
                token: format!("t{:02}z", self.cycle_hour),
            });
        }
        Ok(())
    }
}

/// Hours covered by one nowcast: WCOFS runs a 24 h nowcast, the others 6 h.
pub fn nowcast_hours(model: &str) -> u16 {
    if model == "wcofs" || model.starts_with("wcofs_") {
        24
    } else {
        6
    }
}

/// Result of looking at a key: model output to index, or something to skip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Output(OfsKey),
    Skip(SkipReason),
}

impl Parsed {
    pub fn output(self) -> Option<OfsKey> {
        match self {
            Parsed::Output(k) => Some(k),
            Parsed::Skip(_) => None,
        }
    }
}

/// Why a key is not indexed. `Display` is the log line; [`SkipReason::code`]
/// is a stable label for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// `.log`, `.tar`, `.in`, folder markers...
    NotNetcdf,
    /// Neither OFS naming scheme (GLOFS legacy, STOFS, ...).
    UnrecognizedName,
    /// `met`, `obc`, `rst`, `hflux`, `river`, `clim`, `init`, `avg`...
    NonOutputKind(String),
    /// `fields.forecast`/`fields.nowcast` single-file runs (NYOFS): not
    /// hourly files, so the hourly aggregation cannot use them.
    SingleFileRun,
    /// The name is model output but the folder is none of the bucket forms.
    UnknownFolder(String),
    /// A destination-bucket key that is not `*.zarr`.
    NotReference,
    /// One of our own aggregates: re-triggering on it would loop.
    Aggregate,
}

impl SkipReason {
    pub fn code(&self) -> &'static str {
        match self {
            SkipReason::NotNetcdf => "not_netcdf",
            SkipReason::UnrecognizedName => "unrecognized_name",
            SkipReason::NonOutputKind(_) => "non_output_kind",
            SkipReason::SingleFileRun => "single_file_run",
            SkipReason::UnknownFolder(_) => "unknown_folder",
            SkipReason::NotReference => "not_reference",
            SkipReason::Aggregate => "aggregate",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::NotNetcdf => f.write_str("not a .nc file"),
            SkipReason::UnrecognizedName => {
                f.write_str("file name follows neither OFS naming scheme")
            }
            SkipReason::NonOutputKind(k) => write!(f, "{k:?} files are not model output"),
            SkipReason::SingleFileRun => {
                f.write_str("single-file nowcast/forecast run, not hourly output")
            }
            SkipReason::UnknownFolder(p) => write!(f, "folder {p:?} is not an OFS bucket layout"),
            SkipReason::NotReference => f.write_str("not a .zarr reference"),
            SkipReason::Aggregate => f.write_str("an aggregate written by this pipeline"),
        }
    }
}

/// A key that looks like model output but cannot be, or an output key that
/// would be unsafe to write.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Error {
    #[error("key {key:?}: model name {model:?} is not [a-z0-9_]{{1,64}}")]
    BadModel { key: String, model: String },
    #[error("key {key:?}: {token:?} is not a valid YYYYMMDD date (1900-9999)")]
    BadDate { key: String, token: String },
    #[error("key {key:?}: cycle {token:?} is not t00z-t23z")]
    BadCycleHour { key: String, token: String },
    #[error("key {key:?}: {reason}")]
    Malformed { key: String, reason: &'static str },
    #[error("key {key:?}: folder {folder:?} disagrees with the file name ({reason})")]
    FolderMismatch {
        key: String,
        folder: String,
        reason: &'static str,
    },
    #[error("{what} {value:?} is unsafe in an output key: {reason}")]
    Unsafe {
        what: &'static str,
        value: String,
        reason: &'static str,
    },
}

/// Parses a source object key of noaa-ofs-pds or noaa-nos-ofs-pds.
pub fn parse(key: &str) -> Result<Parsed, Error> {
    let (folder, name) = match key.rsplit_once('/') {
        Some((folder, name)) => (Some(folder), name),
        None => (None, key),
    };
    let mut k = match parse_name(key, name)? {
        Parsed::Output(k) => k,
        skip @ Parsed::Skip(_) => return Ok(skip),
    };
    if let Some(folder) = folder {
        match classify_folder(key, folder, &k)? {
            Some(f) => k.folder = f,
            None => return Ok(Parsed::Skip(SkipReason::UnknownFolder(clip(folder)))),
        }
    }
    Ok(Parsed::Output(k))
}

/// `{prefix}/{basename}.zarr`, the original pipeline's single-file reference
/// key (`nos/nos.dbofs.fields.f030.20230323.t12z.nc.zarr`).
///
/// The source key is checked even though only its basename is used: a key
/// with `..` or control characters is not one we should be indexing.
pub fn single_ref_key(dest_prefix: &str, source_key: &str) -> Result<String, Error> {
    let prefix = checked_prefix(dest_prefix)?;
    check_path("source key", source_key)?;
    let base = source_key.rsplit('/').next().unwrap_or(source_key);
    Ok(join(prefix, &format!("{base}.zarr")))
}

/// The model-run aggregate: the single-file name with the hour removed, i.e.
/// the original glob with `.f*` dropped
/// (`nos/nos.dbofs.fields.20230323.t12z.nc.zarr`, or
/// `{prefix}/{ofs}.t{CC}z.{YYYYMMDD}.fields.nc.zarr` for current names).
/// Nowcasts map to the same key; whether they join the run is the caller's
/// policy (the original pipeline ignored them).
pub fn model_run_key(prefix: &str, key: &OfsKey) -> Result<String, Error> {
    let prefix = checked_prefix(prefix)?;
    key.check()?;
    let (m, k) = (&key.model, key.kind.token());
    let (ymd, cc) = (key.cycle_date.yyyymmdd(), key.cycle_hour);
    let name = match key.layout {
        Layout::Legacy => format!("nos.{m}.{k}.{ymd}.t{cc:02}z.nc.zarr"),
        Layout::Current => format!("{m}.t{cc:02}z.{ymd}.{k}.nc.zarr"),
    };
    Ok(join(prefix, &name))
}

/// The best-time-series aggregate across runs
/// (`nos/nos.dbofs.fields.best.nc.zarr`, or `{prefix}/{ofs}.fields.best.nc.zarr`).
pub fn best_key(prefix: &str, key: &OfsKey) -> Result<String, Error> {
    let prefix = checked_prefix(prefix)?;
    key.check()?;
    let (m, k) = (&key.model, key.kind.token());
    let name = match key.layout {
        Layout::Legacy => format!("nos.{m}.{k}.best.nc.zarr"),
        Layout::Current => format!("{m}.{k}.best.nc.zarr"),
    };
    Ok(join(prefix, &name))
}

/// Recovers the source file's [`OfsKey`] from a reference key written by
/// [`single_ref_key`], for `update_model_run`, which is triggered by writes
/// to the destination bucket. Those writes include our own aggregates, which
/// are skipped so that an aggregate write does not trigger another.
/// The folder is [`Folder::Bare`]: the reference key does not keep it.
pub fn parse_single_ref_key(key: &str) -> Result<Parsed, Error> {
    check_path("reference key", key)?;
    let Some(source) = key.strip_suffix(".zarr") else {
        return Ok(Parsed::Skip(SkipReason::NotReference));
    };
    let name = source.rsplit('/').next().unwrap_or(source);
    if is_aggregate_name(name) {
        return Ok(Parsed::Skip(SkipReason::Aggregate));
    }
    parse_name(key, name)
}

fn parse_name(key: &str, name: &str) -> Result<Parsed, Error> {
    let Some(stem) = name.strip_suffix(".nc") else {
        return Ok(Parsed::Skip(SkipReason::NotNetcdf));
    };
    let tokens: Vec<&str> = stem.split('.').collect();
    let malformed = |reason| Error::Malformed {
        key: clip(key),
        reason,
    };
    // Current names are recognised first by their `tCCz.YYYYMMDD` pair, which
    // never appears at that position in a legacy name.
    let (layout, model, kind, hour, ymd, cc) = match tokens.as_slice() {
        [model, cc, ymd, kind, rest @ ..] if looks_like_cycle(cc) && is_digits(ymd, 8) => {
            let Some(kind) = Kind::from_token(kind) else {
                return Ok(Parsed::Skip(SkipReason::NonOutputKind(clip(kind))));
            };
            let [hour] = rest else {
                return Err(malformed("expected exactly one hour token after the kind"));
            };
            (Layout::Current, *model, kind, *hour, *ymd, *cc)
        }
        ["nos", model, kind, rest @ ..] => {
            let Some(kind) = Kind::from_token(kind) else {
                return Ok(Parsed::Skip(SkipReason::NonOutputKind(clip(kind))));
            };
            let [hour, ymd, cc] = rest else {
                return Err(malformed(
                    "expected nos.{ofs}.{kind}.{hour}.{YYYYMMDD}.t{CC}z.nc",
                ));
            };
            if !is_digits(ymd, 8) {
                return Err(malformed("date is not 8 digits"));
            }
            if !looks_like_cycle(cc) {
                return Err(malformed("cycle is not t{CC}z"));
            }
            (Layout::Legacy, *model, kind, *hour, *ymd, *cc)
        }
        _ => return Ok(Parsed::Skip(SkipReason::UnrecognizedName)),
    };
    let hour = match (kind, hour) {
        (Kind::Stations, "nowcast") => Hour::StationsNowcast,
        (Kind::Stations, "forecast") => Hour::StationsForecast,
        (Kind::Stations, _) => {
            return Err(malformed("stations files must be .nowcast or .forecast"));
        }
        (_, "nowcast" | "forecast") => return Ok(Parsed::Skip(SkipReason::SingleFileRun)),
        (_, h) => parse_hour(h).ok_or_else(|| malformed("hour is not n{HHH} or f{HHH}"))?,
    };
    if !is_model_name(model) {
        return Err(Error::BadModel {
            key: clip(key),
            model: clip(model),
        });
    }
    let cycle_hour = cc
        .get(1..3)
        .and_then(|d| d.parse::<u8>().ok())
        .filter(|h| *h <= 23)
        .ok_or_else(|| Error::BadCycleHour {
            key: clip(key),
            token: clip(cc),
        })?;
    let cycle_date = Date::parse_yyyymmdd(ymd).ok_or_else(|| Error::BadDate {
        key: clip(key),
        token: clip(ymd),
    })?;
    Ok(Parsed::Output(OfsKey {
        model: model.to_owned(),
        cycle_date,
        cycle_hour,
        kind,
        hour,
        layout,
        folder: Folder::Bare,
    }))
}

fn parse_hour(token: &str) -> Option<Hour> {
    let digits = token.get(1..).filter(|d| is_digits(d, 3))?;
    let h = digits.parse().ok()?;
    match token.as_bytes().first() {
        Some(b'n') => Some(Hour::Nowcast(h)),
        Some(b'f') => Some(Hour::Forecast(h)),
        _ => None,
    }
}

/// `Ok(None)`: not a bucket layout at all (skip). `Err`: a bucket layout
/// whose model or date contradicts the file name, which should not happen.
fn classify_folder(key: &str, folder: &str, k: &OfsKey) -> Result<Option<Folder>, Error> {
    let d = k.cycle_date;
    let segments: Vec<&str> = folder.split('/').collect();
    let (form, model, date_ok) = match segments.as_slice() {
        [daily] => match daily.rsplit_once('.') {
            Some((model, ymd)) if is_digits(ymd, 8) => (Folder::Daily, model, ymd == d.yyyymmdd()),
            _ => return Ok(None),
        },
        [model, "netcdf", ym] if is_digits(ym, 6) => (
            Folder::ArchiveMonthly,
            *model,
            *ym == format!("{:04}{:02}", d.year, d.month),
        ),
        [model, "netcdf", y, m, dd] if is_digits(y, 4) && is_digits(m, 2) && is_digits(dd, 2) => (
            Folder::ArchiveDaily,
            *model,
            format!("{y}{m}{dd}") == d.yyyymmdd(),
        ),
        _ => return Ok(None),
    };
    let mismatch = |reason| Error::FolderMismatch {
        key: clip(key),
        folder: clip(folder),
        reason,
    };
    if model != k.model {
        return Err(mismatch("model differs"));
    }
    if !date_ok {
        return Err(mismatch("date differs from the cycle date"));
    }
    Ok(Some(form))
}

/// Our own aggregate names (see [`model_run_key`], [`best_key`]), plus the
/// later pipeline's `{kind}.{forecast|nowcast}.{YYYYMMDD}.t{CC}z` run
/// aggregates, which sit in the same bucket.
fn is_aggregate_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".nc") else {
        return false;
    };
    let tokens: Vec<&str> = stem.split('.').collect();
    let kind = |t: &str| Kind::from_token(t).is_some();
    match tokens.as_slice() {
        ["nos", _, k, "best"] | [_, k, "best"] => kind(k),
        ["nos", _, k, ymd, cc] => kind(k) && is_digits(ymd, 8) && looks_like_cycle(cc),
        [_, cc, ymd, k] => kind(k) && is_digits(ymd, 8) && looks_like_cycle(cc),
        ["nos", _, k, "forecast" | "nowcast", ymd, cc] => {
            kind(k) && *k != "stations" && is_digits(ymd, 8) && looks_like_cycle(cc)
        }
        _ => false,
    }
}

fn looks_like_cycle(s: &str) -> bool {
    s.strip_prefix('t')
        .and_then(|r| r.strip_suffix('z'))
        .is_some_and(|d| is_digits(d, 2))
}

fn is_digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

/// The bound keeps output keys well under S3's 1024-byte limit; real names
/// are at most a dozen characters (`stofs_3d_atl`).
fn is_model_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Rejects what could escape the destination prefix or confuse an S3 key
/// consumer ([`crate::key::check_path`]), naming the field.
fn check_path(what: &'static str, value: &str) -> Result<(), Error> {
    crate::key::check_path(value).map_err(|reason| Error::Unsafe {
        what,
        value: clip(value),
        reason,
    })
}

/// [`crate::key::check_prefix`], naming the field.
fn checked_prefix(prefix: &str) -> Result<&str, Error> {
    crate::key::check_prefix(prefix).map_err(|reason| Error::Unsafe {
        what: "prefix",
        value: clip(prefix),
        reason,
    })
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(key: &str) -> OfsKey {
        match parse(key) {
            Ok(Parsed::Output(k)) => k,
            other => panic!("{key}: expected output, got {other:?}"),
        }
    }

    fn skip(key: &str) -> SkipReason {
        match parse(key) {
            Ok(Parsed::Skip(r)) => r,
            other => panic!("{key}: expected skip, got {other:?}"),
        }
    }

    fn date(y: u16, m: u8, d: u8) -> Date {
        Date {
            year: y,
            month: m,
            day: d,
        }
    }

    fn iso(k: &OfsKey) -> String {
        k.valid_time().map(UtcTime::to_iso8601).unwrap_or_default()
    }

    #[test]
    fn readme_1_1_noaa_ofs_pds_examples() {
        let k = out("tbofs.20230314/nos.tbofs.fields.n002.20230314.t00z.nc");
        assert_eq!(
            k,
            OfsKey {
                model: "tbofs".into(),
                cycle_date: date(2023, 3, 14),
                cycle_hour: 0,
                kind: Kind::Fields,
                hour: Hour::Nowcast(2),
                layout: Layout::Legacy,
                folder: Folder::Daily,
            }
        );
        assert_eq!(iso(&k), "2023-03-13T20:00:00Z");

        let k = out("dbofs.20230628/nos.dbofs.fields.f048.20230628.t18z.nc");
        assert_eq!(
            (k.hour, k.cycle_hour, k.layout),
            (Hour::Forecast(48), 18, Layout::Legacy)
        );
        assert_eq!(iso(&k), "2023-06-30T18:00:00Z");

        let k = out("dbofs.20240905/dbofs.t06z.20240905.fields.f030.nc");
        assert_eq!(
            (k.layout, k.folder, k.hour, k.cycle_date),
            (
                Layout::Current,
                Folder::Daily,
                Hour::Forecast(30),
                date(2024, 9, 5)
            )
        );
        assert_eq!(iso(&k), "2024-09-06T12:00:00Z");

        let k = out("dbofs.20260720/dbofs.t06z.20260720.stations.forecast.nc");
        assert_eq!((k.kind, k.hour), (Kind::Stations, Hour::StationsForecast));
        assert_eq!(k.valid_time(), None);
        assert_eq!(k.cycle_time().to_iso8601(), "2026-07-20T06:00:00Z");

        let k = out("cbofs.20230314/nos.cbofs.stations.nowcast.20230314.t00z.nc");
        assert_eq!(
            (k.kind, k.hour, k.layout),
            (Kind::Stations, Hour::StationsNowcast, Layout::Legacy)
        );
    }

    #[test]
    fn readme_1_2_archive_examples() {
        let k = out("cbofs/netcdf/202411/cbofs.t00z.20241115.fields.f001.nc");
        assert_eq!(
            (k.folder, k.layout),
            (Folder::ArchiveMonthly, Layout::Current)
        );
        let k = out("dbofs/netcdf/2026/07/20/dbofs.t06z.20260720.fields.n001.nc");
        assert_eq!((k.folder, k.hour), (Folder::ArchiveDaily, Hour::Nowcast(1)));
        assert_eq!(iso(&k), "2026-07-20T01:00:00Z");
        let k = out("dbofs/netcdf/202607/nos.dbofs.fields.n006.20260720.t00z.nc");
        assert_eq!(
            (k.folder, k.layout),
            (Folder::ArchiveMonthly, Layout::Legacy)
        );
        assert_eq!(k.valid_time(), Some(k.cycle_time()));
        // Not a real key per the README, but backfill is uneven: accept it.
        let k = out("dbofs/netcdf/2024/06/01/dbofs.t00z.20240601.fields.f001.nc");
        assert_eq!(
            (k.folder, k.layout),
            (Folder::ArchiveDaily, Layout::Current)
        );
        // make_ofs.py layouts (README section 5).
        for key in [
            "dbofs.20230323/nos.dbofs.fields.f030.20230323.t12z.nc",
            "dbofs.20230323/dbofs.t12z.20230323.fields.f030.nc",
            "dbofs/netcdf/202303/nos.dbofs.fields.f030.20230323.t12z.nc",
            "dbofs/netcdf/202411/dbofs.t12z.20241115.fields.f030.nc",
            "dbofs/netcdf/2025/06/01/dbofs.t12z.20250601.fields.f030.nc",
        ] {
            let k = out(key);
            assert_eq!(k.object_key(), key);
            assert_eq!(k.hour, Hour::Forecast(30));
        }
    }

    #[test]
    fn every_name_form_in_every_folder_form() {
        let names = [
            (
                "nos.lmhofs.2ds.f120.20250102.t06z.nc",
                Kind::TwoDs,
                Layout::Legacy,
            ),
            (
                "lmhofs.t06z.20250102.regulargrid.n003.nc",
                Kind::RegularGrid,
                Layout::Current,
            ),
            (
                "nos.lmhofs.regulargrid.f001.20250102.t06z.nc",
                Kind::RegularGrid,
                Layout::Legacy,
            ),
            (
                "lmhofs.t06z.20250102.stations.nowcast.nc",
                Kind::Stations,
                Layout::Current,
            ),
        ];
        let folders = [
            ("", Folder::Bare),
            ("lmhofs.20250102/", Folder::Daily),
            ("lmhofs/netcdf/202501/", Folder::ArchiveMonthly),
            ("lmhofs/netcdf/2025/01/02/", Folder::ArchiveDaily),
        ];
        for (name, kind, layout) in names {
            for (dir, folder) in folders {
                let key = format!("{dir}{name}");
                let k = out(&key);
                assert_eq!(
                    (k.kind, k.layout, k.folder),
                    (kind, layout, folder),
                    "{key}"
                );
                assert_eq!(k.object_key(), key);
                assert_eq!(k.file_name(), name);
            }
        }
    }

    #[test]
    fn readme_1_3_valid_times() {
        let k = out("nos.cbofs.fields.n001.20220914.t12z.nc");
        assert_eq!(iso(&k), "2022-09-14T07:00:00Z");
        let k = out("nos.cbofs.fields.n006.20220914.t12z.nc");
        assert_eq!(k.valid_time(), Some(k.cycle_time()));
        // Hour 000 (NCEI archives) is accepted: forecast f000 is the cycle time.
        let k = out("nos.cbofs.fields.f000.20180101.t00z.nc");
        assert_eq!(
            (k.hour, iso(&k).as_str()),
            (Hour::Forecast(0), "2018-01-01T00:00:00Z")
        );
        let k = out("cbofs.t00z.20180101.fields.n000.nc");
        assert_eq!(iso(&k), "2017-12-31T18:00:00Z");
        // WCOFS: 24 h nowcast.
        let k = out("wcofs.20241115/wcofs.t03z.20241115.fields.n001.nc");
        assert_eq!(iso(&k), "2024-11-14T04:00:00Z");
        let k = out("nos.wcofs.fields.n024.20230101.t03z.nc");
        assert_eq!(k.valid_time(), Some(k.cycle_time()));
        let k = out("nos.wcofs.fields.f072.20230101.t03z.nc");
        assert_eq!(iso(&k), "2023-01-04T03:00:00Z");
        // Leap day, year end.
        let k = out("nos.dbofs.fields.f024.20240228.t00z.nc");
        assert_eq!(iso(&k), "2024-02-29T00:00:00Z");
        let k = out("nos.dbofs.fields.f048.20231231.t18z.nc");
        assert_eq!(iso(&k), "2024-01-02T18:00:00Z");
        assert_eq!(
            out("nos.dbofs.fields.f000.19700101.t00z.nc")
                .cycle_time()
                .unix_seconds(),
            0
        );
        assert_eq!(
            out("nos.dbofs.fields.f000.20230323.t12z.nc")
                .cycle_time()
                .unix_seconds(),
            1_679_572_800
        );
    }

    #[test]
    fn iso_round_trips_over_many_days() {
        // Walk 1900-2400 day by day: Display must invert days_since_epoch.
        let mut d = date(1900, 1, 1);
        let mut expected_days = Date::days_since_epoch(d);
        while d.year < 2401 {
            let t = UtcTime::from_unix_seconds(expected_days * 86_400 + 3 * 3600 + 61);
            let want = format!("{:04}-{:02}-{:02}T03:01:01Z", d.year, d.month, d.day);
            assert_eq!(t.to_iso8601(), want);
            assert_eq!(d.days_since_epoch(), expected_days);
            d = match Date::new(d.year, d.month, d.day + 1) {
                Some(n) => n,
                None if d.month == 12 => date(d.year + 1, 1, 1),
                None => date(d.year, d.month + 1, 1),
            };
            expected_days += 1;
        }
        assert_eq!(
            UtcTime::from_unix_seconds(-1).to_iso8601(),
            "1969-12-31T23:59:59Z"
        );
        // Extremes must not panic.
        let _ = UtcTime::from_unix_seconds(i64::MAX).to_iso8601();
        let _ = UtcTime::from_unix_seconds(i64::MIN).to_iso8601();
    }

    #[test]
    fn model_families_and_time_dims() {
        use ModelFamily::*;
        let table = [
            ("cbofs", Roms),
            ("dbofs", Roms),
            ("tbofs", Roms),
            ("gomofs", Roms),
            ("ciofs", Roms),
            ("wcofs", Roms),
            ("wcofs_da", Roms),
            ("wcofs_free", Roms),
            ("ngofs2", Fvcom),
            ("ngofs", Fvcom),
            ("sfbofs", Fvcom),
            ("sscofs", Fvcom),
            ("leofs", Fvcom),
            ("lmhofs", Fvcom),
            ("loofs", Fvcom),
            ("lsofs", Fvcom),
            ("loofs2", Schism),
            ("secofs", Schism),
            ("stofs_3d_atl", Schism),
            ("stofs_3d_pac", Schism),
            ("creofs", Unknown),
            ("nyofs", Unknown),
            ("sjrofs", Unknown),
            ("necofs", Unknown),
            ("xyz", Unknown),
        ];
        for (model, family) in table {
            assert_eq!(ModelFamily::of(model), family, "{model}");
            let k = out(&format!("{model}.t00z.20250101.fields.f001.nc"));
            assert_eq!(k.family(), family);
            let legacy = out(&format!("nos.{model}.fields.f001.20230101.t00z.nc"));
            assert_eq!(legacy.model, model);
        }
        assert_eq!(Roms.time_dimension(), Some("ocean_time"));
        assert_eq!(Fvcom.time_dimension(), Some("time"));
        assert_eq!(Schism.time_dimension(), Some("time"));
        assert_eq!(Unknown.time_dimension(), None);
    }

    #[test]
    fn non_output_keys_are_skipped_with_reasons() {
        let cases = [
            (
                "cbofs.20230314/nos.cbofs.met.forecast.20230314.t00z.nc",
                "non_output_kind",
            ),
            (
                "cbofs.20230314/nos.cbofs.obc.20230314.t00z.nc",
                "non_output_kind",
            ),
            (
                "cbofs.20230314/nos.cbofs.rst.nowcast.20230314.t00z.nc",
                "non_output_kind",
            ),
            (
                "cbofs.20230314/nos.cbofs.hflux.forecast.20230314.t00z.nc",
                "non_output_kind",
            ),
            (
                "cbofs.20230314/nos.cbofs.river.20230314.t00z.nc",
                "non_output_kind",
            ),
            (
                "cbofs.20230314/nos.cbofs.init.nowcast.20230314.t00z.nc",
                "non_output_kind",
            ),
            (
                "cbofs.20230314/nos.cbofs.clim.20230314.t00z.nc",
                "non_output_kind",
            ),
            (
                "cbofs.20230314/nos.cbofs.roms.tides.20230314.t00z.nc",
                "non_output_kind",
            ),
            (
                "wcofs.20230314/nos.wcofs.avg.n024.20230314.t03z.nc",
                "non_output_kind",
            ),
            (
                "cbofs.20241115/cbofs.t00z.20241115.met.forecast.nc",
                "non_output_kind",
            ),
            (
                "cbofs.20241115/cbofs.t00z.20241115.obc.nc",
                "non_output_kind",
            ),
            (
                "cbofs.20241115/cbofs.t00z.20241115.rst.nowcast.nc",
                "non_output_kind",
            ),
            (
                "cbofs.20230314/nos.cbofs.forecast.20230314.t00z.log",
                "not_netcdf",
            ),
            (
                "cbofs.20230314/cbofs.t00z.20230314.nowcast.log",
                "not_netcdf",
            ),
            (
                "cbofs.20230314/nos.cbofs.ctl.20230314.t00z.in",
                "not_netcdf",
            ),
            (
                "cbofs.20230314/nos.cbofs.fields.20230314.t00z.tar",
                "not_netcdf",
            ),
            ("cbofs.20230314/", "not_netcdf"),
            (
                "cbofs.20230314/nos.cbofs.fields.f001.20230314.t00z.nc.gz",
                "not_netcdf",
            ),
            ("", "not_netcdf"),
            (
                "glofs.20230314/glofs.lsofs.fields.forecast.20230314.t00z.nc",
                "unrecognized_name",
            ),
            (
                "STOFS-3D-Atl/stofs_3d_atl.20240101/stofs_3d_atl.t12z.fields.cwl.nc",
                "unrecognized_name",
            ),
            ("cbofs.20230314/random.nc", "unrecognized_name"),
            (".nc", "unrecognized_name"),
            (
                "nyofs.20230314/nos.nyofs.fields.forecast.20230314.t00z.nc",
                "single_file_run",
            ),
            (
                "nyofs.20241115/nyofs.t00z.20241115.fields.nowcast.nc",
                "single_file_run",
            ),
            (
                "some/where/nos.cbofs.fields.f001.20230314.t00z.nc",
                "unknown_folder",
            ),
            (
                "cbofs/other/202303/nos.cbofs.fields.f001.20230314.t00z.nc",
                "unknown_folder",
            ),
            (
                "../nos.cbofs.fields.f001.20230314.t00z.nc",
                "unknown_folder",
            ),
            ("/nos.cbofs.fields.f001.20230314.t00z.nc", "unknown_folder"),
            (
                "cbofs/netcdf/2023/3/14/nos.cbofs.fields.f001.20230314.t00z.nc",
                "unknown_folder",
            ),
        ];
        for (key, code) in cases {
            let r = skip(key);
            assert_eq!(r.code(), code, "{key}: {r}");
            assert!(!r.to_string().is_empty());
        }
        assert_eq!(
            skip("cbofs.20241115/cbofs.t00z.20241115.met.forecast.nc").to_string(),
            "\"met\" files are not model output"
        );
        assert_eq!(parse("x.log").ok().and_then(Parsed::output), None);
    }

    #[test]
    fn invalid_output_keys_are_errors() {
        let bad_date = [
            "nos.dbofs.fields.f001.20230230.t00z.nc",
            "dbofs.t00z.20230230.fields.f001.nc",
            "nos.dbofs.fields.f001.20230229.t00z.nc",
            "nos.dbofs.fields.f001.20231301.t00z.nc",
            "nos.dbofs.fields.f001.20230100.t00z.nc",
            "nos.dbofs.fields.f001.00000101.t00z.nc",
            "nos.dbofs.fields.f001.18991231.t00z.nc",
        ];
        for key in bad_date {
            assert!(
                matches!(parse(key), Err(Error::BadDate { .. })),
                "{key}: {:?}",
                parse(key)
            );
        }
        assert!(
            parse("nos.dbofs.fields.f001.20240229.t00z.nc").is_ok_and(|p| p.output().is_some())
        );
        assert!(
            parse("nos.dbofs.fields.f001.20000229.t00z.nc").is_ok_and(|p| p.output().is_some())
        );
        assert!(matches!(
            parse("nos.dbofs.fields.f001.21000229.t00z.nc"),
            Err(Error::BadDate { .. })
        ));

        for key in [
            "nos.dbofs.fields.f001.20230301.t24z.nc",
            "dbofs.t99z.20230301.fields.f001.nc",
        ] {
            assert!(
                matches!(parse(key), Err(Error::BadCycleHour { .. })),
                "{key}"
            );
        }
        for key in [
            "nos.DBOFS.fields.f001.20230301.t00z.nc",
            "nos.db-ofs.fields.f001.20230301.t00z.nc",
            "nos..fields.f001.20230301.t00z.nc",
            "Dbofs.t00z.20230301.fields.f001.nc",
            "db ofs.t00z.20230301.fields.f001.nc",
        ] {
            assert!(
                matches!(parse(key), Err(Error::BadModel { .. })),
                "{key}: {:?}",
                parse(key)
            );
        }
        let long = format!("{}.t00z.20230301.fields.f001.nc", "a".repeat(65));
        assert!(matches!(parse(&long), Err(Error::BadModel { .. })));
        for key in [
            "nos.dbofs.fields.f01.20230301.t00z.nc",
            "nos.dbofs.fields.f0001.20230301.t00z.nc",
            "nos.dbofs.fields.x001.20230301.t00z.nc",
            "nos.dbofs.fields.f00a.20230301.t00z.nc",
            "nos.dbofs.fields.f001.2023031.t00z.nc",
            "nos.dbofs.fields.f001.20230301.t0z.nc",
            "nos.dbofs.fields.f001.20230301.nc",
            "nos.dbofs.fields.f001.20230301.t00z.extra.nc",
            "nos.dbofs.stations.f001.20230301.t00z.nc",
            "dbofs.t00z.20230301.fields.nc",
            "dbofs.t00z.20230301.fields.f001.x.nc",
            "dbofs.t00z.20230301.stations.n001.nc",
            "dbofs.t00z.20230301.fields.f\u{0661}01.nc",
        ] {
            assert!(
                matches!(parse(key), Err(Error::Malformed { .. })),
                "{key}: {:?}",
                parse(key)
            );
        }
        for key in [
            "cbofs.20230315/nos.cbofs.fields.f001.20230314.t00z.nc",
            "dbofs.20230314/nos.cbofs.fields.f001.20230314.t00z.nc",
            "cbofs/netcdf/202304/nos.cbofs.fields.f001.20230314.t00z.nc",
            "cbofs/netcdf/2023/03/15/cbofs.t00z.20230314.fields.f001.nc",
            "dbofs/netcdf/2023/03/14/cbofs.t00z.20230314.fields.f001.nc",
            "../netcdf/202303/nos.cbofs.fields.f001.20230314.t00z.nc",
        ] {
            assert!(
                matches!(parse(key), Err(Error::FolderMismatch { .. })),
                "{key}: {:?}",
                parse(key)
            );
        }
        let msg = parse("nos.dbofs.fields.f001.20230230.t00z.nc")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            msg.contains("\"20230230\" is not a valid YYYYMMDD date"),
            "{msg}"
        );
    }

    #[test]
    fn readme_4_output_keys() {
        let src = "dbofs.20230323/nos.dbofs.fields.f030.20230323.t12z.nc";
        assert_eq!(
            single_ref_key("nos", src).ok().as_deref(),
            Some("nos/nos.dbofs.fields.f030.20230323.t12z.nc.zarr")
        );
        assert_eq!(
            single_ref_key("nos/", src).ok().as_deref(),
            Some("nos/nos.dbofs.fields.f030.20230323.t12z.nc.zarr")
        );
        assert_eq!(
            single_ref_key("", src).ok().as_deref(),
            Some("nos.dbofs.fields.f030.20230323.t12z.nc.zarr")
        );
        // ingest_tools layout: nos/{ofs}/{basename}.zarr
        assert_eq!(
            single_ref_key("nos/dbofs", src).ok().as_deref(),
            Some("nos/dbofs/nos.dbofs.fields.f030.20230323.t12z.nc.zarr")
        );
        let k = out(src);
        assert_eq!(
            model_run_key("nos", &k).ok().as_deref(),
            Some("nos/nos.dbofs.fields.20230323.t12z.nc.zarr")
        );
        assert_eq!(
            best_key("nos", &k).ok().as_deref(),
            Some("nos/nos.dbofs.fields.best.nc.zarr")
        );

        let k = out("cbofs/netcdf/202411/cbofs.t00z.20241115.fields.f001.nc");
        assert_eq!(
            model_run_key("nos/cbofs", &k).ok().as_deref(),
            Some("nos/cbofs/cbofs.t00z.20241115.fields.nc.zarr")
        );
        // The production successor's post-rename name (README 4).
        assert_eq!(
            best_key("nos/cbofs", &k).ok().as_deref(),
            Some("nos/cbofs/cbofs.fields.best.nc.zarr")
        );
        let k = out("nos.cbofs.2ds.n003.20230101.t06z.nc");
        assert_eq!(
            model_run_key("nos", &k).ok().as_deref(),
            Some("nos/nos.cbofs.2ds.20230101.t06z.nc.zarr")
        );
    }

    #[test]
    fn reference_keys_invert_single_ref_key() {
        let seed = "nos/nos.dbofs.fields.f030.20230323.t12z.nc.zarr";
        let k = match parse_single_ref_key(seed) {
            Ok(Parsed::Output(k)) => k,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            k,
            OfsKey {
                folder: Folder::Bare,
                ..out("nos.dbofs.fields.f030.20230323.t12z.nc")
            }
        );
        assert_eq!(
            model_run_key("nos", &k).ok().as_deref(),
            Some("nos/nos.dbofs.fields.20230323.t12z.nc.zarr")
        );

        for src in [
            "tbofs.20230314/nos.tbofs.fields.n002.20230314.t00z.nc",
            "dbofs/netcdf/2026/07/20/dbofs.t06z.20260720.fields.n001.nc",
            "dbofs.20260720/dbofs.t06z.20260720.stations.forecast.nc",
        ] {
            let reference = single_ref_key("nos/x", src).unwrap_or_default();
            let back = parse_single_ref_key(&reference)
                .ok()
                .and_then(Parsed::output);
            assert_eq!(
                back,
                Some(OfsKey {
                    folder: Folder::Bare,
                    ..out(src)
                }),
                "{reference}"
            );
        }

        let skips = [
            ("nos/nos.dbofs.fields.20230323.t12z.nc.zarr", "aggregate"),
            ("nos/nos.dbofs.fields.best.nc.zarr", "aggregate"),
            ("nos/cbofs/cbofs.t00z.20241115.fields.nc.zarr", "aggregate"),
            ("nos/cbofs/cbofs.fields.best.nc.zarr", "aggregate"),
            (
                "nos/dbofs/nos.dbofs.fields.forecast.20230323.t12z.nc.zarr",
                "aggregate",
            ),
            (
                "nos/dbofs/nos.dbofs.fields.nowcast.20230323.t12z.nc.zarr",
                "aggregate",
            ),
            (
                "nos/nos.dbofs.fields.f030.20230323.t12z.nc",
                "not_reference",
            ),
            (
                "nos/nos.dbofs.fields.f030.20230323.t12z.nc.zarr.tmp",
                "not_reference",
            ),
            ("nos/readme.zarr", "not_netcdf"),
            ("nos/other.nc.zarr", "unrecognized_name"),
            (
                "nos/nos.dbofs.met.forecast.20230323.t12z.nc.zarr",
                "non_output_kind",
            ),
        ];
        for (key, code) in skips {
            match parse_single_ref_key(key) {
                Ok(Parsed::Skip(r)) => assert_eq!(r.code(), code, "{key}: {r}"),
                other => panic!("{key}: {other:?}"),
            }
        }
        // The real stations file is a single-file reference, not an aggregate.
        assert!(
            parse_single_ref_key("nos/nos.dbofs.stations.forecast.20230323.t12z.nc.zarr")
                .is_ok_and(|p| p.output().is_some())
        );
        assert!(matches!(
            parse_single_ref_key("nos/nos.dbofs.fields.f030.20230230.t12z.nc.zarr"),
            Err(Error::BadDate { .. })
        ));
    }

    #[test]
    fn hostile_paths_are_rejected() {
        let src = "dbofs.20230323/nos.dbofs.fields.f030.20230323.t12z.nc";
        let k = out(src);
        for prefix in [
            "../nos",
            "nos/../x",
            "/nos",
            "nos\\x",
            "nos//x",
            "nos/./x",
            "nos\n",
            "a\u{0}b",
            "..",
            ".",
            "//",
            "nos/\u{7f}",
        ] {
            assert!(
                matches!(
                    single_ref_key(prefix, src),
                    Err(Error::Unsafe { what: "prefix", .. })
                ),
                "{prefix:?}"
            );
            assert!(
                matches!(model_run_key(prefix, &k), Err(Error::Unsafe { .. })),
                "{prefix:?}"
            );
            assert!(
                matches!(best_key(prefix, &k), Err(Error::Unsafe { .. })),
                "{prefix:?}"
            );
        }
        for key in [
            "../x.nc",
            "a/../x.nc",
            "/x.nc",
            "a\\x.nc",
            "a//x.nc",
            "x.nc/",
            "x\r.nc",
            "",
            "a/./x.nc",
            "..",
        ] {
            assert!(
                matches!(
                    single_ref_key("nos", key),
                    Err(Error::Unsafe {
                        what: "source key",
                        ..
                    })
                ),
                "{key:?}"
            );
            let reference = format!("{key}.zarr");
            if key.is_empty() || key.ends_with('/') || key == ".." {
                continue; // not the same hostile shape once suffixed
            }
            assert!(
                matches!(parse_single_ref_key(&reference), Err(Error::Unsafe { .. })),
                "{reference:?}"
            );
        }
        // A hand-built OfsKey cannot inject a path either.
        for model in ["../etc", "a/b", "", "A", "x\u{0}"] {
            let evil = OfsKey {
                model: model.into(),
                ..k.clone()
            };
            assert!(
                matches!(model_run_key("nos", &evil), Err(Error::BadModel { .. })),
                "{model:?}"
            );
            assert!(
                matches!(best_key("nos", &evil), Err(Error::BadModel { .. })),
                "{model:?}"
            );
        }
        let evil = OfsKey {
            cycle_date: date(2023, 2, 30),
            ..k.clone()
        };
        assert!(matches!(
            model_run_key("nos", &evil),
            Err(Error::BadDate { .. })
        ));
        let evil = OfsKey {
            cycle_hour: 24,
            ..k.clone()
        };
        assert!(matches!(
            model_run_key("nos", &evil),
            Err(Error::BadCycleHour { .. })
        ));
        // Very long hostile keys are clipped in messages.
        let long = format!("../{}", "a".repeat(100_000));
        let msg = single_ref_key("nos", &long)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(msg.len() < 400, "{}", msg.len());
    }

    use crate::test_rng::Rng;

    /// Mutates real keys (delete/replace/insert/truncate) and checks that
    /// nothing panics and that whatever parses as output is self-consistent.
    #[test]
    fn never_panics_and_outputs_are_consistent() {
        let seeds = [
            "tbofs.20230314/nos.tbofs.fields.n002.20230314.t00z.nc",
            "dbofs.20240905/dbofs.t06z.20240905.fields.f030.nc",
            "dbofs.20260720/dbofs.t06z.20260720.stations.forecast.nc",
            "cbofs/netcdf/202411/cbofs.t00z.20241115.fields.f001.nc",
            "dbofs/netcdf/2026/07/20/dbofs.t06z.20260720.fields.n001.nc",
            "nos/nos.dbofs.fields.f030.20230323.t12z.nc.zarr",
            "nos/nos.dbofs.fields.best.nc.zarr",
        ];
        let alphabet: Vec<char> = "./tzfnsnc0123456789_-abz\\\u{0}\u{7f} é\u{0661}Z%"
            .chars()
            .collect();
        let mut rng = Rng(0xD1B5_4A32_D192_ED03);
        let mut outputs = 0;
        for round in 0..50_000 {
            let seed = seeds.get(round % seeds.len()).copied().unwrap_or_default();
            let mut chars: Vec<char> = seed.chars().collect();
            for _ in 0..=rng.below(3) {
                let at = rng.below(chars.len() + 1);
                let c = alphabet
                    .get(rng.below(alphabet.len()))
                    .copied()
                    .unwrap_or('x');
                match rng.below(4) {
                    0 if at < chars.len() => {
                        chars.remove(at);
                    }
                    1 if at < chars.len() => {
                        if let Some(slot) = chars.get_mut(at) {
                            *slot = c;
                        }
                    }
                    2 => chars.truncate(at),
                    _ => chars.insert(at, c),
                }
            }
            let key: String = chars.into_iter().collect();
            let _ = single_ref_key("nos", &key);
            if let Ok(Parsed::Output(k)) = parse_single_ref_key(&key) {
                assert!(model_run_key("nos", &k).is_ok(), "{key:?}");
            }
            if let Ok(Parsed::Output(k)) = parse(&key) {
                outputs += 1;
                assert_eq!(k.object_key(), key, "rebuilds exactly");
                assert!(k.cycle_hour <= 23);
                assert!(is_model_name(&k.model));
                let _ = k.valid_time().map(UtcTime::to_iso8601);
                let run = model_run_key("nos", &k);
                let best = best_key("nos", &k);
                let single = single_ref_key("nos", &key);
                assert!(run.is_ok() && best.is_ok() && single.is_ok(), "{key:?}");
                let back = single
                    .ok()
                    .and_then(|r| parse_single_ref_key(&r).ok())
                    .and_then(Parsed::output);
                assert_eq!(
                    back,
                    Some(OfsKey {
                        folder: Folder::Bare,
                        ..k
                    }),
                    "{key:?}"
                );
            }
        }
        assert!(outputs > 100, "mutations too destructive: {outputs}");
    }
}
