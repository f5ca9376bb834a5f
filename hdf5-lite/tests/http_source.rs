//! `HttpSource` against a small HTTP/1.1 server written here on a std
//! `TcpListener`: ranges, servers that ignore `Range`, 416, retries on 503,
//! dropped connections, truncated and short bodies, timeouts, fatal 4xx,
//! the concurrency bound, and a whole-file walk compared with `FileSource`.

// `&[a..b]` is a list of one range here, which is what `get_ranges` takes.
#![allow(clippy::single_range_in_vec_init)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hdf5_lite::source::SourceErrorKind;
use hdf5_lite::source::http::HttpSource;
use hdf5_lite::{FileSource, RangeSource, SourceOptions};

/// What the server does with a path; failures apply to the first `fail`
/// requests of that path (query included), then it serves normally.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    /// Honour `Range` (206 / 416).
    Ok,
    /// Ignore `Range`: 200 with the whole body.
    Ignore,
    /// 503 Service Unavailable.
    Unavailable,
    /// 404, always.
    NotFound,
    /// Read the request, then close the connection without answering.
    Drop,
    /// Send the headers and half the declared body, then close.
    Truncate,
    /// A well-framed 206 whose body is shorter than its Content-Range.
    Short,
    /// Wait 2 s before answering.
    Slow,
    /// ETag `"v1"` for the first request, `"v2"` after (the object was
    /// replaced); honours `If-Match` with 412.
    Changing,
}

struct Server {
    base: String,
    data: Arc<Vec<u8>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    max_in_flight: Arc<AtomicUsize>,
}

impl Server {
    fn start(data: Vec<u8>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let data = Arc::new(data);
        let hits = Arc::new(Mutex::new(HashMap::new()));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let max_in_flight = Arc::new(AtomicUsize::new(0));
        {
            let (data, hits, max_in_flight) = (data.clone(), hits.clone(), max_in_flight.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    let Ok(conn) = conn else { continue };
                    let (data, hits) = (data.clone(), hits.clone());
                    let (in_flight, max_in_flight) = (in_flight.clone(), max_in_flight.clone());
                    std::thread::spawn(move || {
                        serve(conn, &data, &hits, &in_flight, &max_in_flight)
                    });
                }
            });
        }
        Server {
            base,
            data,
            hits,
            max_in_flight,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

fn serve(
    conn: TcpStream,
    data: &[u8],
    hits: &Mutex<HashMap<String, usize>>,
    in_flight: &AtomicUsize,
    max_in_flight: &AtomicUsize,
) {
    // `/reset?fail=N`: close a fresh connection without reading the request,
    // so the kernel answers with a TCP RST (unread data), N times.
    let mut peek = [0u8; 64];
    if let Ok(k) = conn.peek(&mut peek) {
        let start = String::from_utf8_lossy(&peek[..k]).to_string();
        if let Some(rest) = start.strip_prefix("GET /reset?fail=") {
            let fail: usize = rest
                .split(' ')
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut m = hits.lock().unwrap();
            let c = m.entry(format!("/reset?fail={fail}")).or_insert(0);
            if *c < fail {
                *c += 1;
                std::thread::sleep(Duration::from_millis(20));
                drop(m);
                return;
            }
            *c += 1;
        }
    }
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let mut range: Option<(u64, Option<u64>)> = None;
        let mut if_match: Option<String> = None;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("if-match")
            {
                if_match = Some(v.trim().to_string());
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("range")
            {
                let spec = v.trim().strip_prefix("bytes=").unwrap();
                let (a, b) = spec.split_once('-').unwrap();
                range = Some((a.parse().unwrap(), b.parse().ok()));
            }
        }
        let n = if target.starts_with("/reset") {
            usize::MAX
        } else {
            let mut m = hits.lock().unwrap();
            let c = m.entry(target.clone()).or_insert(0);
            *c += 1;
            *c
        };
        let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        max_in_flight.fetch_max(now, Ordering::SeqCst);
        let keep = respond(&mut out, &target, n, range, if_match.as_deref(), data);
        in_flight.fetch_sub(1, Ordering::SeqCst);
        if !keep {
            return;
        }
    }
}

/// Write one response; false closes the connection.
fn respond(
    out: &mut TcpStream,
    target: &str,
    n: usize,
    range: Option<(u64, Option<u64>)>,
    if_match: Option<&str>,
    data: &[u8],
) -> bool {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let fail: usize = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("fail="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    let delay: u64 = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("delay_ms="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    std::thread::sleep(Duration::from_millis(delay));
    let mode = match path {
        "/ok" => Mode::Ok,
        "/ignore" => Mode::Ignore,
        "/503" => Mode::Unavailable,
        "/404" => Mode::NotFound,
        "/drop" => Mode::Drop,
        "/truncate" => Mode::Truncate,
        "/short" => Mode::Short,
        "/slow" => Mode::Slow,
        "/reset" => Mode::Ok,
        "/changing" => Mode::Changing,
        _ => Mode::NotFound,
    };
    let mut etag_header = String::new();
    if mode == Mode::Changing {
        let etag = if n <= 1 { "\"v1\"" } else { "\"v2\"" };
        if if_match.is_some_and(|m| m != etag) {
            return {
                let h = "HTTP/1.1 412 Precondition Failed\r\nContent-Length: 0\r\n\r\n";
                out.write_all(h.as_bytes()).is_ok()
            };
        }
        etag_header = format!("ETag: {etag}\r\n");
    }
    let failing = n <= fail && !matches!(mode, Mode::Ok | Mode::Ignore | Mode::Changing);
    let len = data.len() as u64;
    let head = |out: &mut TcpStream, status: &str, extra: &str, body_len: usize| {
        let h = format!("HTTP/1.1 {status}\r\nContent-Length: {body_len}\r\n{extra}\r\n");
        out.write_all(h.as_bytes()).is_ok()
    };
    if failing {
        match mode {
            Mode::Unavailable => return head(out, "503 Service Unavailable", "", 0),
            Mode::Drop => return false,
            Mode::Slow => std::thread::sleep(Duration::from_secs(2)),
            _ => {}
        }
    }
    if mode == Mode::NotFound {
        head(out, "404 Not Found", "", 0);
        return true;
    }
    if mode == Mode::Ignore || range.is_none() {
        return head(out, "200 OK", "", data.len()) && out.write_all(data).is_ok();
    }
    let (a, b) = range.unwrap_or((0, None));
    if a >= len {
        return head(
            out,
            "416 Range Not Satisfiable",
            &format!("Content-Range: bytes */{len}\r\n"),
            0,
        );
    }
    let b = b.unwrap_or(len - 1).min(len - 1);
    let body = &data[a as usize..=b as usize];
    let cr = format!("Content-Range: bytes {a}-{b}/{len}\r\n{etag_header}");
    if failing && mode == Mode::Truncate {
        head(out, "206 Partial Content", &cr, body.len());
        let _ = out.write_all(&body[..body.len() / 2]);
        return false;
    }
    if failing && mode == Mode::Short {
        let half = &body[..body.len() / 2];
        return head(out, "206 Partial Content", &cr, half.len()) && out.write_all(half).is_ok();
    }
    head(out, "206 Partial Content", &cr, body.len()) && out.write_all(body).is_ok()
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn fast_opts() -> SourceOptions {
    SourceOptions {
        backoff_base: Duration::from_millis(1),
        backoff_max: Duration::from_millis(5),
        request_timeout: Duration::from_millis(500),
        ..SourceOptions::default()
    }
}

fn expect(data: &[u8], ranges: &[Range<u64>]) -> Vec<Bytes> {
    ranges
        .iter()
        .map(|r| {
            let s = (r.start as usize).min(data.len());
            let e = (r.end as usize).min(data.len()).max(s);
            Bytes::copy_from_slice(&data[s..e])
        })
        .collect()
}

#[tokio::test]
async fn ranges_size_and_past_eof() {
    let srv = Server::start(pattern(100_000));
    let src = HttpSource::new(&srv.url("/ok"), &fast_opts()).unwrap();
    let ranges = [
        0..10,
        99_990..100_000,
        50_000..50_001,
        99_995..100_100,
        100_000..100_010,
        7..7,
    ];
    let got = src.get_ranges(&ranges).await.unwrap();
    assert_eq!(got, expect(&srv.data, &ranges));
    assert_eq!(src.size().await.unwrap(), 100_000);
    // Once the size is known, ranges past the end cost no request.
    let before = srv.hits("/ok");
    let got = src.get_ranges(&[200_000..200_010]).await.unwrap();
    assert_eq!(got, vec![Bytes::new()]);
    assert_eq!(srv.hits("/ok"), before);
}

#[tokio::test]
async fn size_first_then_416_on_first_request() {
    let srv = Server::start(pattern(1000));
    // size() before any read: learned from a 1-byte GET.
    let src = HttpSource::new(&srv.url("/ok"), &fast_opts()).unwrap();
    assert_eq!(src.size().await.unwrap(), 1000);
    // A first request entirely past EOF: 416 gives empty bytes and the size.
    let src = HttpSource::new(&srv.url("/ok?x=1"), &fast_opts()).unwrap();
    assert_eq!(
        src.get_ranges(&[5000..6000]).await.unwrap(),
        vec![Bytes::new()]
    );
    assert_eq!(src.known_size(), Some(1000));
}

#[tokio::test]
async fn server_ignoring_range_is_sliced_once() {
    let srv = Server::start(pattern(30_000));
    let src = HttpSource::new(&srv.url("/ignore"), &fast_opts()).unwrap();
    let ranges = [100..200, 29_990..30_500];
    let got = src.get_ranges(&ranges[..1]).await.unwrap();
    assert_eq!(got, expect(&srv.data, &ranges[..1]));
    assert_eq!(src.size().await.unwrap(), 30_000);
    let got = src.get_ranges(&ranges).await.unwrap();
    assert_eq!(got, expect(&srv.data, &ranges));
    assert_eq!(srv.hits("/ignore"), 1, "the full body is reused");
}

#[tokio::test]
async fn retries_503_then_succeeds() {
    let srv = Server::start(pattern(5000));
    let src = HttpSource::new(&srv.url("/503?fail=2"), &fast_opts()).unwrap();
    let got = src.get_ranges(&[10..20]).await.unwrap();
    assert_eq!(got, expect(&srv.data, &[10..20]));
    assert_eq!(srv.hits("/503?fail=2"), 3);
}

#[tokio::test]
async fn gives_up_after_max_attempts_naming_url_and_status() {
    let srv = Server::start(pattern(5000));
    let url = srv.url("/503");
    let opts = SourceOptions {
        max_attempts: 3,
        ..fast_opts()
    };
    let src = HttpSource::new(&url, &opts).unwrap();
    let err = src.get_ranges(&[0..10]).await.unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::Transient);
    let err = err.to_string();
    // The caller names the source once; the error says what failed.
    assert!(!err.contains(&url) && err.contains("503"), "{err}");
    assert!(err.contains("3 attempts"), "{err}");
    assert_eq!(srv.hits("/503"), 3);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let srv = Server::start(pattern(5000));
    let url = srv.url("/404");
    let src = HttpSource::new(&url, &fast_opts()).unwrap();
    let err = src.get_ranges(&[0..10]).await.unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::NotFound);
    let err = err.to_string();
    assert!(!err.contains(&url) && err.contains("404"), "{err}");
    assert_eq!(srv.hits("/404"), 1);
}

#[tokio::test]
async fn reads_are_pinned_to_the_first_version() {
    let srv = Server::start(pattern(5000));
    let src = HttpSource::new(&srv.url("/changing"), &fast_opts()).unwrap();
    let first = src.get_ranges(&[0..10]).await.unwrap();
    assert_eq!(first, expect(&srv.data, &[0..10]));
    assert_eq!(
        src.version().and_then(|v| v.etag).as_deref(),
        Some("\"v1\"")
    );
    // The object is now "v2": the pinned read is refused, not mixed in.
    let err = src.get_ranges(&[10..20]).await.unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::Changed, "{err}");
    assert_eq!(srv.hits("/changing"), 2, "412 is not retried");
    // A fresh source reads the new version.
    let again = HttpSource::new(&srv.url("/changing"), &fast_opts()).unwrap();
    again.get_ranges(&[10..20]).await.unwrap();
    assert_eq!(
        again.version().and_then(|v| v.etag).as_deref(),
        Some("\"v2\"")
    );
}

#[tokio::test]
async fn retries_dropped_connections() {
    let srv = Server::start(pattern(5000));
    let src = HttpSource::new(&srv.url("/drop?fail=2"), &fast_opts()).unwrap();
    let got = src.get_ranges(&[100..4000]).await.unwrap();
    assert_eq!(got, expect(&srv.data, &[100..4000]));
    assert_eq!(srv.hits("/drop?fail=2"), 3);
}

#[tokio::test]
async fn retries_connection_resets() {
    let srv = Server::start(pattern(5000));
    let src = HttpSource::new(&srv.url("/reset?fail=2"), &fast_opts()).unwrap();
    let got = src.get_ranges(&[100..200]).await.unwrap();
    assert_eq!(got, expect(&srv.data, &[100..200]));
    assert_eq!(srv.hits("/reset?fail=2"), 3);
}

#[tokio::test]
async fn retries_truncated_bodies() {
    let srv = Server::start(pattern(50_000));
    let src = HttpSource::new(&srv.url("/truncate?fail=1"), &fast_opts()).unwrap();
    let got = src.get_ranges(&[0..40_000]).await.unwrap();
    assert_eq!(got, expect(&srv.data, &[0..40_000]));
    assert_eq!(srv.hits("/truncate?fail=1"), 2);
}

#[tokio::test]
async fn retries_short_bodies() {
    let srv = Server::start(pattern(50_000));
    let src = HttpSource::new(&srv.url("/short?fail=2"), &fast_opts()).unwrap();
    let got = src.get_ranges(&[1000..3000]).await.unwrap();
    assert_eq!(got, expect(&srv.data, &[1000..3000]));
    assert_eq!(srv.hits("/short?fail=2"), 3);
}

#[tokio::test]
async fn retries_timeouts() {
    let srv = Server::start(pattern(5000));
    let opts = SourceOptions {
        request_timeout: Duration::from_millis(200),
        ..fast_opts()
    };
    let src = HttpSource::new(&srv.url("/slow?fail=1"), &opts).unwrap();
    let got = src.get_ranges(&[0..100]).await.unwrap();
    assert_eq!(got, expect(&srv.data, &[0..100]));
    assert_eq!(srv.hits("/slow?fail=1"), 2);
}

#[tokio::test]
async fn concurrency_is_bounded_and_order_kept() {
    let srv = Server::start(pattern(100_000));
    let opts = SourceOptions {
        concurrency: 4,
        ..fast_opts()
    };
    let src = HttpSource::new(&srv.url("/ok?delay_ms=40"), &opts).unwrap();
    let ranges: Vec<Range<u64>> = (0..20).rev().map(|i| i * 1000..i * 1000 + 10).collect();
    let t = std::time::Instant::now();
    let got = src.get_ranges(&ranges).await.unwrap();
    assert_eq!(got, expect(&srv.data, &ranges));
    let max = srv.max_in_flight.load(Ordering::SeqCst);
    assert!((2..=4).contains(&max), "max in flight {max}");
    // 20 requests of 40 ms, 4 at a time: about 200 ms, not 800 ms.
    assert!(
        t.elapsed() < Duration::from_millis(700),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn walk_over_http_matches_local_file() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/files");
    let path = dir.join("netcdf4_features.nc");
    let data = std::fs::read(&path).unwrap();
    let srv = Server::start(data);
    let opts = hdf5_lite::Options::default();
    let http: Arc<dyn RangeSource> =
        Arc::new(HttpSource::new(&srv.url("/ok"), &fast_opts()).unwrap());
    let (remote, rstats) = hdf5_lite::open(http, &opts).await.unwrap();
    let local: Arc<dyn RangeSource> = Arc::new(FileSource::new(&path));
    let (local, lstats) = hdf5_lite::open(local, &opts).await.unwrap();
    let json = |f: &hdf5_lite::File| serde_json::to_value(&f.root).unwrap();
    assert_eq!(json(&remote), json(&local));
    assert_eq!(remote.size, local.size);
    assert_eq!(rstats.requests, lstats.requests);
    assert_eq!(rstats.waves, lstats.waves);
    assert_eq!(rstats.bytes_fetched, lstats.bytes_fetched);
    // Ranges past the end, once the size is known, cost no request.
    assert!(srv.hits("/ok") as u64 <= rstats.requests);
}

#[tokio::test]
async fn open_url_dispatches_http() {
    let srv = Server::start(pattern(1234));
    let src = hdf5_lite::open_url(&srv.url("/ok"), &fast_opts())
        .await
        .unwrap();
    assert_eq!(src.name(), srv.url("/ok"));
    assert_eq!(
        src.get_ranges(&[0..4]).await.unwrap(),
        expect(&srv.data, &[0..4])
    );
    assert_eq!(src.size().await.unwrap(), 1234);
}

#[tokio::test]
async fn reset_is_a_real_rst_and_named_in_the_error() {
    let srv = Server::start(pattern(5000));
    let opts = SourceOptions {
        max_attempts: 1,
        ..fast_opts()
    };
    let src = HttpSource::new(&srv.url("/reset?fail=1"), &opts).unwrap();
    let err = src.get_ranges(&[100..200]).await.unwrap_err().to_string();
    assert!(
        err.contains("reset") && err.contains("/reset?fail=1"),
        "{err}"
    );
}
