//! `kerchunk-nos`: index NOAA OFS NetCDF-4 files into kerchunk references.
//!
//! Exit codes (for Argo retry policies): 0 success, 1 permanent failure
//! (bad input: retrying will not help), 2 usage error, 3 transient failure
//! (network/store: worth retrying).

#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use hdf5_lite::source::{SourceOptions, open_url};
use ingest::backfill;
use ingest::config::{Config, Pipeline};
use ingest::steps::{self, StepError};
use ingest::store::{StoreError, StoreUrl};
use ingest::worker::{self, Destination, WorkerOptions};

fn join_prefix(a: &str, b: &str) -> String {
    let (a, b) = (a.trim_matches('/'), b.trim_matches('/'));
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}/{b}"),
    }
}

#[derive(Parser)]
#[command(
    name = "kerchunk-nos",
    version,
    about = "Index NetCDF-4/HDF5 files into kerchunk reference sets, without libhdf5"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    pipeline: PipelineArgs,
    /// Log as JSON lines (for Kubernetes log collectors); level from RUST_LOG.
    #[arg(long, global = true, env = "KERCHUNK_NOS_LOG_JSON")]
    log_json: bool,
}

/// Pipeline settings shared by the pipeline verbs.
#[derive(clap::Args, Debug)]
struct PipelineArgs {
    /// Source bucket that may be read (repeat or comma-separate; default
    /// noaa-ofs-pds and noaa-nos-ofs-pds). Messages about other buckets are skipped.
    #[arg(
        long = "source-bucket",
        global = true,
        value_delimiter = ',',
        env = "KERCHUNK_NOS_SOURCE_BUCKETS"
    )]
    source_buckets: Vec<String>,
    /// Models to index and aggregate, comma-separated, or `all`.
    #[arg(
        long,
        global = true,
        default_value = "all",
        env = "KERCHUNK_NOS_MODELS"
    )]
    models: String,
    /// File kinds to index, comma-separated (fields, 2ds, regulargrid).
    #[arg(
        long,
        global = true,
        default_value = "fields",
        env = "KERCHUNK_NOS_KINDS"
    )]
    kinds: String,
    /// S3/SQS endpoint (S3-compatible servers); default AWS_ENDPOINT_URL.
    #[arg(long, global = true)]
    endpoint_url: Option<String>,
    /// Read source bucket B from DIR/B instead of S3 (references still say s3://B/key).
    #[arg(long, global = true, value_name = "DIR")]
    source_root: Option<String>,
    /// Model runs include nowcasts and the best series prefers the newest
    /// cycle's nowcast (default: forecasts only, as the original pipeline).
    #[arg(long, global = true)]
    include_nowcasts: bool,
    /// Per-file limit on HDF5 metadata bytes fetched.
    #[arg(long, global = true, default_value_t = 256 * 1024 * 1024)]
    max_metadata_bytes: u64,
    /// Per-file limit on HDF5 object headers.
    #[arg(long, global = true, default_value_t = 1_000_000)]
    max_objects: usize,
    /// Objects read/written at once within one step.
    #[arg(long, global = true, default_value_t = 8)]
    io_concurrency: usize,
    /// Unsigned S3 requests: `auto` for the public NOAA buckets only,
    /// `always`, or `never` (sign everything with the credential chain).
    #[arg(long, global = true, default_value = "auto", value_parser = ["auto", "always", "never"])]
    anonymous: String,
    /// Formats of the aggregates (update_model_run, worker, backfill):
    /// `json` (the original keys), `parquet` (kerchunk's Parquet references
    /// under KEY.parq/), `icechunk` (one repository per model, a group per
    /// aggregate, README "Icechunk output"); comma-separate or repeat for
    /// several.
    #[arg(
        long = "output-format",
        global = true,
        value_delimiter = ',',
        default_value = "json",
        env = "KERCHUNK_NOS_OUTPUT_FORMAT"
    )]
    output_formats: Vec<String>,
    /// Where `--output-format icechunk` keeps one repository per model
    /// (ROOT/MODEL; file:///dir or s3://bucket/prefix); default
    /// DEST/FOLDER/icechunk beside the JSON aggregates.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "KERCHUNK_NOS_ICECHUNK_ROOT"
    )]
    icechunk_root: Option<String>,
    /// Records one message may carry (after that: exit 1, nothing done).
    #[arg(long, global = true, default_value_t = 100)]
    max_records: usize,
    /// Attempts per S3 request (SDK retries included).
    #[arg(long, global = true, default_value_t = 5)]
    max_attempts: u32,
}

#[derive(Subcommand)]
enum Command {
    /// Show what hdf5-lite reads from a file: datasets, layouts, chunks.
    Inspect {
        /// Local path, file://, http(s):// or s3://bucket/key.
        file: String,
        /// Print JSON (the only format).
        #[arg(long)]
        json: bool,
        /// Print request/byte/wave counters to stderr.
        #[arg(long)]
        stats: bool,
        /// Directory of layouts: a file whose name differs only in digits
        /// from one indexed before is read in one wave (same output).
        #[arg(long, env = "KERCHUNK_NOS_LAYOUT_CACHE")]
        layout_cache: Option<String>,
    },
    /// Write the kerchunk reference set (version 1 JSON) of one file.
    Refs {
        /// Local path, file://, http(s):// or s3://bucket/key.
        source: String,
        /// Output file (default: stdout). A name ending in `.parq` or
        /// `.parquet` is a directory of kerchunk's Parquet references.
        #[arg(short, long)]
        output: Option<String>,
        /// References per Parquet record file (`.parq` output).
        #[arg(long, default_value = "100000")]
        record_size: std::num::NonZeroUsize,
        /// URL written into the references (default: the source).
        #[arg(long)]
        url: Option<String>,
        /// Inline chunks smaller than this many bytes (kerchunk's default).
        #[arg(long, default_value_t = 500)]
        inline_threshold: u64,
        /// Split uncompressed contiguous datasets into pieces of about this many bytes.
        #[arg(long)]
        split_contiguous: Option<u64>,
        /// Print request/byte/wave counters to stderr.
        #[arg(long)]
        stats: bool,
        /// Directory of layouts: a file whose name differs only in digits
        /// from one indexed before is read in one wave (same output).
        #[arg(long, env = "KERCHUNK_NOS_LAYOUT_CACHE")]
        layout_cache: Option<String>,
        #[command(flatten)]
        icechunk: IcechunkArgs,
    },
    /// Print the TLS root certificates compiled into this binary (PEM). The
    /// image ships them as /etc/ssl/certs/ca-certificates.crt for the one
    /// client that reads the system store: icechunk's S3 client (README
    /// "Deployment").
    #[command(name = "ca-bundle")]
    CaBundle,
    /// Print the S3 records of an SQS/SNS message (as the seed's `dump`).
    Dump {
        /// The message body (SNS envelope, S3 event or test event JSON).
        message: String,
    },
    /// Concatenate reference sets along a dimension (MultiZarrToZarr
    /// equivalent): `combine --concat-dim ocean_time OUT.json IN1.json ...`.
    Combine {
        /// Dimension to concatenate along (`ocean_time` for ROMS, `time` for FVCOM).
        #[arg(long)]
        concat_dim: String,
        /// Arrays taken from the first input unchanged (repeatable).
        #[arg(long = "identical-dim")]
        identical_dims: Vec<String>,
        /// The original pipeline's settings for a model family (sets the
        /// concat dimension's identical arrays): `roms` or `fvcom`.
        #[arg(long, value_parser = ["roms", "fvcom"])]
        preset: Option<String>,
        /// Stack arrays without the concat dimension on it, as
        /// MultiZarrToZarr does (default: take them once from the first input).
        #[arg(long)]
        stack_static: bool,
        /// On duplicate coordinate values keep the first input (default: the later one, as MultiZarrToZarr).
        #[arg(long)]
        first_wins: bool,
        /// Inline concatenated chunks smaller than this many bytes.
        #[arg(long, default_value_t = 500)]
        inline_threshold: u64,
        /// References per Parquet record file (`.parq` output).
        #[arg(long, default_value = "100000")]
        record_size: std::num::NonZeroUsize,
        /// Output reference set (`.parq`/`.parquet`: kerchunk's Parquet
        /// reference directory, otherwise JSON).
        output: String,
        /// Input reference sets (local paths), in order.
        #[arg(required = true)]
        inputs: Vec<String>,
        #[command(flatten)]
        icechunk: IcechunkArgs,
    },
    /// Index the OFS files a source-bucket message names into
    /// DEST_BUCKET/DEST_PREFIX/{basename}.zarr (as the seed's extract_single).
    #[command(name = "extract_single", alias = "extract-single")]
    ExtractSingle {
        /// The message body (SNS envelope, S3 event or test event JSON).
        message: String,
        /// Destination bucket name (or s3://bucket, or file:///dir).
        dest_bucket: String,
        /// Key prefix of the references (e.g. `nos`).
        dest_prefix: String,
        /// Optional model list (the Argo workflow's 4th argument, e.g.
        /// `dbofs`); overrides --models.
        #[arg(value_name = "MODELS")]
        models_arg: Option<String>,
    },
    /// Rebuild the model-run aggregate and best time series for the
    /// single-file references a destination-bucket message names.
    #[command(name = "update_model_run", alias = "update-model-run")]
    UpdateModelRun {
        /// The message body (SNS envelope, S3 event or test event JSON).
        message: String,
        /// Store to update instead of s3://{bucket of the message}.
        #[arg(long)]
        dest: Option<String>,
    },
    /// Long-running SQS worker: extract_single for --queue messages,
    /// update_model_run for --update-queue messages.
    Worker {
        /// Queue of source-bucket new-object notifications.
        #[arg(long, env = "KERCHUNK_NOS_QUEUE")]
        queue: String,
        /// Queue of destination-bucket notifications (model-run updates).
        #[arg(long, env = "KERCHUNK_NOS_UPDATE_QUEUE")]
        update_queue: Option<String>,
        /// Where references are written: s3://bucket/prefix (or file:///dir).
        #[arg(long, env = "KERCHUNK_NOS_DEST")]
        dest: String,
        /// Messages processed at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Seconds a received message stays hidden (extended while it runs);
        /// default: the queue's own visibility timeout.
        #[arg(long)]
        visibility_timeout: Option<i32>,
        /// Long-poll wait in seconds (0-20).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i32).range(0..=20))]
        wait_seconds: i32,
        /// Stop after this many messages.
        #[arg(long)]
        max_messages: Option<u64>,
        /// Stop when all queues are empty and nothing is in flight.
        #[arg(long)]
        exit_when_idle: bool,
    },
    /// Send MESSAGE unchanged to the dead-letter queue at --queue (the Argo
    /// workflows' exit handler, when a workflow did not succeed).
    #[command(name = "dead-letter", alias = "dead_letter")]
    DeadLetter {
        /// URL of the dead-letter queue.
        #[arg(long)]
        queue: String,
        /// The message body, sent byte for byte.
        message: String,
    },
    /// Index existing files of a model for a range of cycle dates, then
    /// rebuild its model runs and best time series.
    Backfill {
        #[arg(long)]
        model: String,
        /// First cycle date, YYYY-MM-DD.
        #[arg(long)]
        from: String,
        /// Last cycle date, YYYY-MM-DD (inclusive).
        #[arg(long)]
        to: String,
        /// Source bucket to list.
        #[arg(long, default_value = "noaa-ofs-pds")]
        bucket: String,
        /// Where references are written: s3://bucket/prefix (or file:///dir).
        #[arg(long, env = "KERCHUNK_NOS_DEST")]
        dest: String,
        /// Key prefix under --dest when it is a directory.
        #[arg(long)]
        prefix: Option<String>,
        /// Re-index files whose reference set already exists.
        #[arg(long)]
        overwrite: bool,
        /// No progress on stderr.
        #[arg(long)]
        quiet: bool,
    },
    /// Recreate every FMRC member index, model run and best time series
    /// under --dest from the stored single-file references alone (no source
    /// listing or re-indexing): the index is a cache, this rebuilds it.
    Rebuild {
        /// Where the references are: s3://bucket/prefix (or file:///dir).
        #[arg(long, env = "KERCHUNK_NOS_DEST")]
        dest: String,
        /// Key prefix under --dest when it is a directory.
        #[arg(long)]
        prefix: Option<String>,
    },
}

/// `--icechunk URL`: also commit the reference set to branch `main` of an
/// Icechunk repository (README "Icechunk output").
#[derive(clap::Args, Debug, Default)]
struct IcechunkArgs {
    /// Icechunk repository (file:///dir or s3://bucket/prefix), created if
    /// missing; an s3:// one honours --endpoint-url / AWS_ENDPOINT_URL.
    #[arg(long, value_name = "URL")]
    icechunk: Option<String>,
    /// Group of the repository that holds the set (e.g. `runs/2023032312`
    /// or `best`; default: the root).
    #[arg(long, value_name = "PATH", requires = "icechunk", default_value = "")]
    icechunk_group: String,
}

/// Commit `refs` to the `--icechunk` repository, if one was given.
async fn write_icechunk(
    args: &IcechunkArgs,
    endpoint_url: Option<&str>,
    refs: &kerchunk::RefSet,
    growable: &[String],
    message: &str,
) -> Result<(), Failure> {
    let Some(url) = &args.icechunk else {
        return Ok(());
    };
    #[cfg(feature = "icechunk")]
    {
        let s3 = kerchunk_icechunk::S3Config {
            endpoint_url: endpoint_url
                .map(str::to_string)
                .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok()),
            region: None,
        };
        let s =
            kerchunk_icechunk::write_at(url, &args.icechunk_group, refs, growable, &s3, message)
                .await
                .map_err(|e| Failure {
                    code: e.exit_code(),
                    message: e.to_string(),
                })?;
        for (path, reason) in &s.warnings {
            eprintln!("warning: icechunk: /{path}: {reason}");
        }
        eprintln!(
            "icechunk {url}: {} ({} arrays, {} inline + {} virtual chunks; containers {})",
            s.snapshot
                .as_deref()
                .map_or("no changes, no new commit".to_string(), |id| format!(
                    "commit {id}"
                )),
            s.arrays,
            s.inline_chunks,
            s.virtual_chunks,
            s.containers.join(" ")
        );
        Ok(())
    }
    #[cfg(not(feature = "icechunk"))]
    {
        let _ = (refs, growable, message, endpoint_url);
        Err(usage(format!(
            "--icechunk {url}: this binary was built without the icechunk feature"
        )))
    }
}

/// A failure with the exit code Argo should see: 1 permanent, 2 usage,
/// 3 transient. Built only from typed errors (each `From` below decides
/// its code) or the explicit constructors, never from any `Display`, so a
/// transient error cannot silently become a permanent one through `?`.
struct Failure {
    code: u8,
    message: String,
}

impl From<StepError> for Failure {
    fn from(e: StepError) -> Self {
        step_failure(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        store_failure(e)
    }
}

impl From<hdf5_lite::Error> for Failure {
    fn from(e: hdf5_lite::Error) -> Self {
        step_failure(StepError::from_hdf5(&e))
    }
}

impl From<hdf5_lite::SourceError> for Failure {
    fn from(e: hdf5_lite::SourceError) -> Self {
        step_failure(StepError::from_source(&e, ""))
    }
}

impl From<kerchunk::Error> for Failure {
    fn from(e: kerchunk::Error) -> Self {
        step_failure(StepError::from_kerchunk(&e))
    }
}

impl From<kerchunk::combine::CombineError> for Failure {
    fn from(e: kerchunk::combine::CombineError) -> Self {
        match e {
            kerchunk::combine::CombineError::Fetch { .. } => transient(e),
            other => permanent(other),
        }
    }
}

impl From<kerchunk::parquet::ParquetError> for Failure {
    // Bad output paths and unrepresentable keys: retrying cannot help.
    fn from(e: kerchunk::parquet::ParquetError) -> Self {
        permanent(e)
    }
}

impl From<ingest::message::Error> for Failure {
    fn from(e: ingest::message::Error) -> Self {
        permanent(e)
    }
}

impl From<serde_json::Error> for Failure {
    fn from(e: serde_json::Error) -> Self {
        permanent(e)
    }
}

fn transient(e: impl std::fmt::Display) -> Failure {
    Failure {
        code: 3,
        message: e.to_string(),
    }
}

fn permanent(e: impl std::fmt::Display) -> Failure {
    Failure {
        code: 1,
        message: e.to_string(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_json);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start runtime: {e}");
            return ExitCode::from(3);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// Log targets of the AWS SDK and its HTTP stack that can print credentials
/// or signed headers at debug/trace level.
const CREDENTIAL_BEARING_TARGETS: &[&str] = &[
    "aws_config",
    "aws_credential_types",
    "aws_runtime",
    "aws_sigv4",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_smithy_types",
    "aws_sdk_s3",
    "aws_sdk_sqs",
    "aws_sdk_sts",
    "aws_sdk_sso",
    "aws_sdk_ssooidc",
    "hyper",
    "hyper_util",
    "h2",
    "reqwest",
    "rustls",
];

fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // The AWS SDK logs credentials (access key IDs in identity and signing
    // traces) at debug/trace. Whatever RUST_LOG asks, its targets are capped
    // at info (a directive for the exact target replaces the user's).
    for target in CREDENTIAL_BEARING_TARGETS {
        if let Ok(d) = format!("{target}=info").parse() {
            filter = filter.add_directive(d);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

fn usage(e: impl std::fmt::Display) -> Failure {
    Failure {
        code: 2,
        message: e.to_string(),
    }
}

fn step_failure(e: StepError) -> Failure {
    Failure {
        code: e.exit_code(),
        message: e.to_string(),
    }
}

fn store_failure(e: StoreError) -> Failure {
    step_failure(e.into())
}

fn pipeline(a: &PipelineArgs, dest_override: Option<StoreUrl>) -> Result<Pipeline, Failure> {
    let mut c = Config::default();
    let buckets: Vec<String> = a
        .source_buckets
        .iter()
        .map(|b| b.trim().to_string())
        .filter(|b| !b.is_empty())
        .collect();
    if !buckets.is_empty() {
        c.source_buckets = buckets;
    }
    c.models = Config::parse_models(&a.models);
    c.kinds = Config::parse_kinds(&a.kinds).map_err(usage)?;
    c.source_root = a.source_root.as_ref().map(std::path::PathBuf::from);
    c.dest_override = dest_override;
    c.include_nowcasts = a.include_nowcasts;
    c.output_formats =
        ingest::outputs::OutputFormat::parse_list(&a.output_formats).map_err(usage)?;
    c.icechunk_root = a.icechunk_root.clone();
    c.hdf5.max_metadata_bytes = a.max_metadata_bytes;
    c.hdf5.max_objects = a.max_objects;
    c.io_concurrency = a.io_concurrency.max(1);
    c.max_records_per_message = a.max_records.max(1);
    c.source_options.endpoint_url = a.endpoint_url.clone();
    c.source_options.max_attempts = a.max_attempts.max(1);
    c.source_options.anonymous = match a.anonymous.as_str() {
        "always" => Some(true),
        "never" => Some(false),
        _ => None,
    };
    Ok(Pipeline::new(c))
}

/// `nextgen-dmac`, `s3://nextgen-dmac[/p]` or `file:///dir` -> store URL.
fn dest_url(s: &str) -> Result<StoreUrl, Failure> {
    let url = if s.contains("://") || s.starts_with('/') || s.starts_with('.') {
        s.to_string()
    } else {
        format!("s3://{s}")
    };
    StoreUrl::parse(&url).map_err(usage)
}

/// The Parquet form of `refs` at `path` (all or nothing; exit 1 when the
/// path is a file or a foreign directory).
fn write_parquet(
    refs: &kerchunk::RefSet,
    path: &str,
    record_size: usize,
    warnings: &[(String, String)],
) -> Result<(), Failure> {
    kerchunk::parquet::write_dir(refs, parquet_dir(path), record_size, warnings)?;
    Ok(())
}

fn parquet_dir(path: &str) -> &std::path::Path {
    std::path::Path::new(path.trim_end_matches('/'))
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<(), Failure> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Walk `source`; with a layout cache, fetch a sibling's layout in the
/// first wave and remember this file's afterwards (see `remember`).
async fn open(
    source: &str,
    options: &hdf5_lite::Options,
    cache: Option<&hdf5_lite::layout_cache::LayoutCache>,
) -> Result<
    (
        hdf5_lite::Opened,
        hdf5_lite::Stats,
        Arc<hdf5_lite::Prefetched>,
    ),
    Failure,
> {
    let src = open_url(source, &SourceOptions::default()).await?;
    let mut options = options.clone();
    if let Some(c) = cache {
        options.predicted = c.predict(source);
    }
    Ok(hdf5_lite::open_any_prefetched(src, &options).await?)
}

/// `--stats` output: the engine's counters plus this process's peak
/// resident memory (Linux `VmHWM`), the figure the memory target is about.
fn stats_json(st: &hdf5_lite::Stats) -> String {
    let mut v = serde_json::to_value(st).unwrap_or_default();
    let peak = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        });
    if let (Some(obj), Some(kib)) = (v.as_object_mut(), peak) {
        obj.insert("peak_rss_kib".into(), kib.into());
    }
    v.to_string()
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let endpoint_url = cli.pipeline.endpoint_url.clone();
    match cli.command {
        Command::Inspect {
            file,
            json: _,
            stats,
            layout_cache,
        } => {
            let cache = layout_cache.map(hdf5_lite::layout_cache::LayoutCache::new);
            let (f, st, src) = open(&file, &hdf5_lite::Options::default(), cache.as_ref()).await?;
            if let Some(c) = &cache {
                c.remember(&file, st.file_size, &src.layout_ranges());
            }
            let mut j = ingest::inspect::inspect_json(&f.model());
            if let Some(o) = j.as_object_mut() {
                o.insert("format".into(), f.format_name().into());
            }
            println!("{}", serde_json::to_string_pretty(&j)?);
            if stats {
                eprintln!("{}", stats_json(&st));
            }
        }
        Command::Refs {
            source,
            output,
            url,
            inline_threshold,
            split_contiguous,
            record_size,
            stats,
            layout_cache,
            icechunk,
        } => {
            if let Some(path) = output
                .as_deref()
                .filter(|p| kerchunk::parquet::is_parquet_path(p))
            {
                kerchunk::parquet::check_target(parquet_dir(path))?;
            }
            let cache = layout_cache.map(hdf5_lite::layout_cache::LayoutCache::new);
            // The walk also fetches the chunks `translate` will inline, in the
            // waves it already makes, instead of after it.
            let walk = hdf5_lite::Options {
                prefetch_below: inline_threshold,
                ..Default::default()
            };
            let (f, mut st, src) = open(&source, &walk, cache.as_ref()).await?;
            let mut opts =
                kerchunk::translate::TranslateOptions::new(url.unwrap_or_else(|| source.clone()));
            opts.inline_threshold = inline_threshold;
            opts.split_contiguous = split_contiguous;
            let t = kerchunk::translate_opened(&f, &*src, &opts).await?;
            let after = src.miss_stats();
            if let Some(c) = &cache {
                c.remember(&source, st.file_size, &src.layout_ranges());
            }
            st.waves += after.waves;
            st.requests += after.requests;
            st.bytes_fetched += after.bytes_fetched;
            for w in &t.warnings {
                eprintln!("warning: {source}: {}: {}", w.path, w.reason);
            }
            write_icechunk(
                &icechunk,
                endpoint_url.as_deref(),
                &t.refs,
                &[],
                &format!("refs {source}"),
            )
            .await?;
            match output {
                Some(path) if kerchunk::parquet::is_parquet_path(&path) => {
                    let w: Vec<(String, String)> = t
                        .warnings
                        .iter()
                        .map(|w| (w.path.clone(), w.reason.clone()))
                        .collect();
                    write_parquet(&t.refs, &path, record_size.get(), &w)?
                }
                Some(path) => std::fs::write(&path, t.to_json())
                    .map_err(|e| permanent(format!("cannot write {path}: {e}")))?,
                None => println!("{}", t.to_json()),
            }
            if stats {
                eprintln!("{}", stats_json(&st));
            }
        }
        Command::CaBundle => {
            print!("{}", hdf5_lite::source::webpki_roots_pem());
        }
        Command::Dump { message } => {
            println!("{}", ingest::message::dump(&message)?);
        }
        Command::Combine {
            concat_dim,
            identical_dims,
            preset,
            stack_static,
            first_wins,
            inline_threshold,
            record_size,
            output,
            inputs,
            icechunk,
        } => {
            use kerchunk::combine::{
                CombineOptions, Duplicates, StaticVars, UrlResolver, combine_fetching, read_inputs,
            };
            let mut opts = match preset.as_deref() {
                Some("roms") => CombineOptions::roms(),
                Some("fvcom") => CombineOptions::fvcom(),
                _ => CombineOptions::new(concat_dim.clone()),
            };
            opts.concat_dim = concat_dim;
            opts.identical_dims.extend(identical_dims);
            opts.inline_threshold = inline_threshold;
            if stack_static {
                opts.static_vars = StaticVars::Stack;
            }
            if first_wins {
                opts.duplicates = Duplicates::FirstWins;
            }
            if kerchunk::parquet::is_parquet_path(&output) {
                kerchunk::parquet::check_target(parquet_dir(&output))?;
            }
            // read, then parse on every core
            let sets = read_inputs(&inputs)?;
            let resolver = UrlResolver::new(hdf5_lite::SourceOptions::default());
            let combined = combine_fetching(&sets, &opts, &resolver).await?;
            write_icechunk(
                &icechunk,
                endpoint_url.as_deref(),
                &combined,
                std::slice::from_ref(&opts.concat_dim),
                &format!("combine {} inputs on {}", inputs.len(), opts.concat_dim),
            )
            .await?;
            if kerchunk::parquet::is_parquet_path(&output) {
                write_parquet(&combined, &output, record_size.get(), &[])?;
            } else {
                std::fs::write(&output, combined.to_json())
                    .map_err(|e| permanent(format!("cannot write {output}: {e}")))?;
            }
        }
        Command::ExtractSingle {
            message,
            dest_bucket,
            dest_prefix,
            models_arg,
        } => {
            let mut p = pipeline(&cli.pipeline, None)?;
            if let Some(m) = models_arg {
                p.config.models = Config::parse_models(&m);
            }
            let url = dest_url(&dest_bucket)?;
            let prefix = join_prefix(url.prefix(), &dest_prefix);
            let dest = p.store(&url).await.map_err(store_failure)?;
            let out = steps::extract_single(&p, &message, &*dest, &prefix)
                .await
                .map_err(step_failure)?;
            print_json(&out)?;
        }
        Command::UpdateModelRun { message, dest } => {
            let dest = dest.as_deref().map(dest_url).transpose()?;
            let p = pipeline(&cli.pipeline, dest)?;
            let out = steps::update_model_run(&p, &message)
                .await
                .map_err(step_failure)?;
            print_json(&out)?;
        }
        Command::Worker {
            queue,
            update_queue,
            dest,
            concurrency,
            visibility_timeout,
            wait_seconds,
            max_messages,
            exit_when_idle,
        } => {
            let url = dest_url(&dest)?;
            let p = Arc::new(pipeline(&cli.pipeline, Some(url.clone()))?);
            let store = p.store(&url).await.map_err(store_failure)?;
            let sqs = worker::sqs_client(&p.config.source_options)
                .await
                .map_err(transient)?;
            let opts = WorkerOptions {
                queue,
                update_queue,
                concurrency: concurrency.max(1),
                visibility_timeout: visibility_timeout.map(|v| v.max(1)),
                wait_seconds,
                max_messages,
                exit_when_idle,
                ..WorkerOptions::default()
            };
            let dest = Destination {
                store,
                prefix: url.prefix().to_string(),
            };
            tracing::info!(
                queue = %opts.queue,
                update_queue = ?opts.update_queue,
                dest = %dest.store.url(),
                prefix = %dest.prefix,
                concurrency = opts.concurrency,
                "worker starting"
            );
            let stats = worker::run(p, sqs, opts, dest, shutdown_signal()).await;
            tracing::info!(
                received = stats.received,
                succeeded = stats.succeeded,
                failed = stats.failed,
                deleted = stats.deleted,
                "worker stopped"
            );
            print_json(&stats)?;
        }
        Command::DeadLetter { queue, message } => {
            let p = pipeline(&cli.pipeline, None)?;
            let sqs = worker::sqs_client(&p.config.source_options)
                .await
                .map_err(transient)?;
            let sent = ingest::dead_letter::send(&sqs, &queue, &message)
                .await
                .map_err(|e| Failure {
                    code: e.exit_code(),
                    message: e.to_string(),
                })?;
            tracing::info!(queue = %sent.queue, message_id = %sent.message_id, "dead-lettered");
            print_json(&sent)?;
        }
        Command::Backfill {
            model,
            from,
            to,
            bucket,
            dest,
            prefix,
            overwrite,
            quiet,
        } => {
            let parse = |s: &str| {
                backfill::parse_date(s).ok_or_else(|| usage(format!("{s:?} is not YYYY-MM-DD")))
            };
            let (from, to) = (parse(&from)?, parse(&to)?);
            if from > to {
                return Err(usage("--from is after --to"));
            }
            let url = dest_url(&dest)?;
            let mut p = pipeline(&cli.pipeline, Some(url.clone()))?;
            if !p.config.is_source_bucket(&bucket) {
                p.config.source_buckets.push(bucket.clone());
            }
            p.config.models = Some([model.clone()].into_iter().collect());
            let store = p.store(&url).await.map_err(store_failure)?;
            let opts = backfill::BackfillOptions {
                model,
                from,
                to,
                bucket,
                dest: store,
                prefix: join_prefix(url.prefix(), prefix.as_deref().unwrap_or("")),
                overwrite,
                progress: !quiet,
            };
            let report = backfill::run(&p, &opts).await.map_err(step_failure)?;
            print_json(&report)?;
            if report.failed > 0 {
                // 3 when a retry may help with any of them, else 1.
                return Err(Failure {
                    code: if report.failed_transient > 0 { 3 } else { 1 },
                    message: format!(
                        "{} files failed to index ({} transient)",
                        report.failed, report.failed_transient
                    ),
                });
            }
        }
        Command::Rebuild { dest, prefix } => {
            let url = dest_url(&dest)?;
            let p = pipeline(&cli.pipeline, Some(url.clone()))?;
            let store = p.store(&url).await.map_err(store_failure)?;
            let prefix = join_prefix(url.prefix(), prefix.as_deref().unwrap_or(""));
            let report = ingest::rebuild::run(&p, &*store, &prefix)
                .await
                .map_err(step_failure)?;
            print_json(&report)?;
        }
    }
    Ok(())
}
