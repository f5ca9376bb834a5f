//! Print the engine's counters for walking local files:
//! `cargo run --release -p hdf5-lite --example walk_stats -- FILE...`
//! (`bytes_fetched / metadata_bytes` is the read amplification).
//! `WAVES=1` also prints, per wave, every structure fetched (its address,
//! length and the range asked for) and the planners' ranges; `WAVES=2`
//! also each speculative range with the root it is for. `SIBLING=FILE`
//! predicts the layout of FILE (a warm run).

use std::sync::Arc;

fn main() {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return eprintln!("runtime: {e}"),
    };
    // Tuning knobs from the environment (HEAD, PROBE, GAP, BEHIND, LA, HEAP,
    // PREFETCH = the `refs` inline threshold), for experiments.
    if std::env::var_os("WAVES").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(if std::env::var_os("WAVES").is_some_and(|v| v == "2") {
                "hdf5_lite::wave=trace,hdf5_lite=info"
            } else {
                "hdf5_lite::wave=debug,hdf5_lite=info"
            })
            .with_target(false)
            .without_time()
            .with_level(false)
            .with_ansi(false)
            .init();
    }
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let defaults = hdf5_lite::Options::default();
    let opts = hdf5_lite::Options {
        head_size: env("HEAD", defaults.head_size),
        probe_size: env("PROBE", defaults.probe_size),
        coalesce_gap: env("GAP", defaults.coalesce_gap),
        header_lookbehind: env("BEHIND", defaults.header_lookbehind),
        lookahead: env("LA", defaults.lookahead),
        heap_probe: env("HEAP", defaults.heap_probe),
        lookbehind: env("LB", defaults.lookbehind),
        prefetch_below: env("PREFETCH", 500),
        speculative_budget: env("SPEC", defaults.speculative_budget),
        ..defaults
    };
    // SIBLING=FILE[,FILE...]: walk those files first, in order, each warm
    // from the layout its predecessor left (the first cold), and predict the
    // last one's layout for the others: a warm run, as `refs --layout-cache`
    // does it after the series' earlier files.
    let mut opts = opts;
    if let Some(sibs) = std::env::var("SIBLING").ok().filter(|s| !s.is_empty()) {
        let mut entry: Option<hdf5_lite::layout_cache::Entry> = None;
        for sib in sibs.split(',') {
            let src: Arc<dyn hdf5_lite::RangeSource> = Arc::new(hdf5_lite::FileSource::new(sib));
            let o = hdf5_lite::Options {
                predicted: entry
                    .as_ref()
                    .map(|e| e.first_wave(None))
                    .unwrap_or_default(),
                ..opts.clone()
            };
            match rt.block_on(hdf5_lite::open_prefetched(src, &o)) {
                Ok((_, st, p)) => {
                    let next = hdf5_lite::layout_cache::Entry::after(
                        entry.as_ref(),
                        st.file_size,
                        p.layout_ranges(),
                    );
                    eprintln!("{sib}: waves {} (drift seen {})", st.waves, next.drift);
                    entry = Some(next);
                }
                Err(e) => return eprintln!("sibling {sib}: {e}"),
            }
        }
        opts.predicted = entry.map(|e| e.first_wave(None)).unwrap_or_default();
    }
    for path in std::env::args().skip(1) {
        let src: Arc<dyn hdf5_lite::RangeSource> = Arc::new(hdf5_lite::FileSource::new(&path));
        match rt.block_on(hdf5_lite::open(src, &opts)) {
            Ok((_, s)) => println!(
                "{path}: waves {} requests {} fetched {} parsed {} ({:.2}x) file {} ({:.2}%)",
                s.waves,
                s.requests,
                s.bytes_fetched,
                s.metadata_bytes,
                s.bytes_fetched as f64 / s.metadata_bytes.max(1) as f64,
                s.file_size,
                100.0 * s.bytes_fetched as f64 / s.file_size.max(1) as f64
            ),
            Err(e) => println!("{path}: {e}"),
        }
    }
}
