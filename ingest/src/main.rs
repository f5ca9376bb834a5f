//! `kerchunk-nos`: index NOAA OFS NetCDF-4 files into kerchunk references.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

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
        /// Local path, file://, http(s):// or s3://bucket/key URL of the file.
        file: String,
        /// Print JSON (the only format for now).
        #[arg(long)]
        json: bool,
        /// Print request/byte/wave counters to stderr.
        #[arg(long)]
        stats: bool,
    },
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
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    match cli.command {
        Command::Inspect {
            file,
            json: _,
            stats,
        } => {
            let src: Arc<dyn hdf5_lite::RangeSource> =
                hdf5_lite::open_url(&file, &hdf5_lite::SourceOptions::default()).await?;
            let (f, st) = hdf5_lite::open(src, &hdf5_lite::Options::default()).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&ingest::inspect::inspect_json(&f))?
            );
            if stats {
                eprintln!("{}", serde_json::to_string(&st)?);
            }
        }
    }
    Ok(())
}
