//! `kerchunk-nos`: index NOAA OFS NetCDF-4 files into kerchunk references.
//!
//! Exit codes (for Argo retry policies): 0 success, 1 permanent failure
//! (bad input: retrying will not help), 2 usage error, 3 transient failure
//! (network/store: worth retrying).

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use hdf5_lite::source::{SourceOptions, open_url};

#[derive(Parser)]
#[command(
    name = "kerchunk-nos",
    version,
    about = "Index NetCDF-4/HDF5 files into kerchunk reference sets, without libhdf5"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
    },
    /// Print the S3 records of an SQS/SNS message (as the seed's `dump`).
    Dump {
        /// The message body (SNS envelope, S3 event or test event JSON).
        message: String,
    },
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

async fn run(cli: Cli) -> Result<(), Failure> {
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
                eprintln!("{}", serde_json::to_string(&st)?);
            }
        }
        Command::Refs {
            source,
            output,
            url,
            inline_threshold,
            split_contiguous,
            stats,
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
            let text = t.refs.to_json();
            match output {
                Some(path) => {
                    std::fs::write(&path, text).map_err(|e| format!("cannot write {path}: {e}"))?
                }
                None => println!("{text}"),
            }
            if stats {
                eprintln!("{}", serde_json::to_string(&st)?);
            }
        }
        Command::Dump { message } => {
            println!("{}", ingest::message::dump(&message)?);
        }
    }
    Ok(())
}
