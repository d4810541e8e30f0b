//! A small closed-loop load generator for `scripts/bench.sh`: N workers send
//! GET requests round-robin over the given paths for D seconds and report
//! throughput and latency percentiles. (wrk is not on every machine; this
//! needs nothing but the crate's own dependencies.)
//!
//! cargo run --release --example loadgen -- URL TOKEN CONCURRENCY SECONDS PATH [PATH...]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 6 {
        eprintln!("usage: loadgen URL TOKEN CONCURRENCY SECONDS PATH [PATH...]");
        std::process::exit(2);
    }
    let base = args[1].clone();
    let token = args[2].clone();
    let concurrency: usize = args[3].parse().expect("concurrency");
    let seconds: u64 = args[4].parse().expect("seconds");
    let paths: Arc<Vec<String>> = Arc::new(args[5..].to_vec());
    drop(rustls::crypto::ring::default_provider().install_default());
    let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build().expect("client");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let (client, base, token, paths) = (client.clone(), base.clone(), token.clone(), paths.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut i = w;
            while Instant::now() < deadline {
                let path = &paths[i % paths.len()];
                i += 1;
                let started = Instant::now();
                match client.get(format!("{base}{path}")).bearer_auth(&token).send().await {
                    Ok(res) if res.status().is_success() => {
                        let _ = res.bytes().await;
                        latencies.push(started.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for w in workers {
        let (l, e) = w.await.expect("worker");
        all.extend(l);
        errors += e;
    }
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or_default()
    };
    println!(
        "{} requests in {seconds} s = {:.0} req/s; errors {errors}; p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        all.len(),
        all.len() as f64 / seconds as f64,
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.95).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        all.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}
