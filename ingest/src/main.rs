//! `kerchunk-nos`: index NOAA OFS NetCDF-4 files into kerchunk references.
//!
//! Exit codes (for Argo retry policies): 0 success, 1 permanent failure
//! (bad input: retrying will not help), 2 usage error, 3 transient failure
//! (network/store: worth retrying).

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
    },
    /// Write the kerchunk reference set (version 1 JSON) of one file.
    Refs {
        /// Local path, file://, http(s):// or s3://bucket/key.
        source: String,
        /// Output file (default: stdout).
        #[arg(short, long)]
        output: Option<String>,
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
        #[command(flatten)]
        icechunk: IcechunkArgs,
    },
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
        /// Output reference set.
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
        /// Seconds a received message stays hidden (extended while it runs).
        #[arg(long, default_value_t = 300)]
        visibility_timeout: i32,
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

/// A failure with the exit code Argo should see.
struct Failure {
    code: u8,
    message: String,
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure {
            code: 1,
            message: e.to_string(),
        }
    }
}

fn transient(e: impl std::fmt::Display) -> Failure {
    Failure {
        code: 3,
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

fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
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
    c.hdf5.max_metadata_bytes = a.max_metadata_bytes;
    c.hdf5.max_objects = a.max_objects;
    c.io_concurrency = a.io_concurrency.max(1);
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

async fn open(
    source: &str,
) -> Result<
    (
        hdf5_lite::File,
        hdf5_lite::Stats,
        Arc<dyn hdf5_lite::RangeSource>,
    ),
    Failure,
> {
    let src = open_url(source, &SourceOptions::default())
        .await
        .map_err(transient)?;
    match hdf5_lite::open(src.clone(), &hdf5_lite::Options::default()).await {
        Ok((f, st)) => Ok((f, st, src)),
        Err(e @ hdf5_lite::Error::Source { .. }) => Err(transient(e)),
        Err(e) => Err(e.into()),
    }
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
        } => {
            let (f, st, _) = open(&file).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&ingest::inspect::inspect_json(&f))?
            );
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
            stats,
            icechunk,
        } => {
            let (f, st, src) = open(&source).await?;
            let mut opts =
                kerchunk::translate::TranslateOptions::new(url.unwrap_or_else(|| source.clone()));
            opts.inline_threshold = inline_threshold;
            opts.split_contiguous = split_contiguous;
            let t = kerchunk::translate::translate(&f, &*src, &opts).await?;
            for w in &t.warnings {
                eprintln!("warning: {source}: {}: {}", w.path, w.reason);
            }
            let text = t.to_json();
            write_icechunk(
                &icechunk,
                endpoint_url.as_deref(),
                &t.refs,
                &[],
                &format!("refs {source}"),
            )
            .await?;
            match output {
                Some(path) => {
                    std::fs::write(&path, text).map_err(|e| format!("cannot write {path}: {e}"))?
                }
                None => println!("{text}"),
            }
            if stats {
                eprintln!("{}", stats_json(&st));
            }
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
            output,
            inputs,
            icechunk,
        } => {
            use kerchunk::combine::{
                CombineOptions, Duplicates, StaticVars, UrlFetcher, combine_fetching,
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
            let mut sets = Vec::with_capacity(inputs.len());
            for path in &inputs {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {path}: {e}"))?;
                let refs =
                    kerchunk::RefSet::from_json(&text).map_err(|e| format!("{path}: {e}"))?;
                sets.push((path.clone(), refs));
            }
            let fetcher = UrlFetcher::new(hdf5_lite::SourceOptions::default());
            let combined = combine_fetching(&sets, &opts, &fetcher).await?;
            write_icechunk(
                &icechunk,
                endpoint_url.as_deref(),
                &combined,
                std::slice::from_ref(&opts.concat_dim),
                &format!("combine {} inputs on {}", inputs.len(), opts.concat_dim),
            )
            .await?;
            std::fs::write(&output, combined.to_json())
                .map_err(|e| format!("cannot write {output}: {e}"))?;
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
                visibility_timeout: visibility_timeout.max(1),
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
                return Err(Failure {
                    code: 3,
                    message: format!("{} files failed to index", report.failed),
                });
            }
        }
    }
    Ok(())
}
