//! `cache-bench`: a read-through cache workload against a Redis-compatible server on
//! 127.0.0.1, reporting its hit ratio (benches/cache-compare.sh drives it).
//!
//! Each operation picks a key from a Zipf distribution over `--keys` keys (YCSB's zipfian
//! generator, exponent `--theta`), GETs it, and on a miss SETs it with a `--value-size`-byte
//! value, as an application in front of a database does. Requests go in pipelines of
//! `--pipeline` GETs, then one pipeline of the SETs their misses call for, over one raw
//! connection. The key sequence depends only on `--seed`, so every server sees the same
//! requests. The first `--warmup` operations fill the cache and are not counted; the hit ratio
//! is that of the `--ops` operations after them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const USAGE: &str = "\
Usage: cache-bench --port P [options]

  --port P          server port on 127.0.0.1 (required)
  --keys N          key space (default 1000000)
  --theta T         Zipf exponent (default 0.99, as YCSB)
  --value-size B    bytes per value (default 100)
  --warmup N        operations before measuring (default 2000000)
  --ops N           measured operations (default 3000000)
  --pipeline K      GETs per round trip (default 100)
  --seed S          seed of the key sequence (default 1)

Prints one line: `cache-bench hits=H gets=G hit_ratio=R sets=S ops/s=X seconds=T`.";

/// YCSB's zipfian generator (Gray et al., \"Quickly generating billion-record synthetic
/// databases\"): rank 0 is the most popular.
struct Zipf {
    n: f64,
    theta: f64,
    alpha: f64,
    zetan: f64,
    eta: f64,
}

impl Zipf {
    fn new(n: u64, theta: f64) -> Zipf {
        let zeta = |count: u64| {
            (1..=count)
                .map(|i| 1.0 / (i as f64).powf(theta))
                .sum::<f64>()
        };
        let zetan = zeta(n);
        let zeta2 = zeta(2);
        let n = n as f64;
        Zipf {
            n,
            theta,
            alpha: 1.0 / (1.0 - theta),
            zetan,
            eta: (1.0 - (2.0 / n).powf(1.0 - theta)) / (1.0 - zeta2 / zetan),
        }
    }

    /// A rank below n, from a uniform `u` in [0, 1).
    fn rank(&self, u: f64) -> u64 {
        let uz = u * self.zetan;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return 1;
        }
        let r = self.n * (self.eta * u - self.eta + 1.0).powf(self.alpha);
        (r as u64).min(self.n as u64 - 1)
    }
}

/// xorshift64*, as a uniform source in [0, 1).
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Options {
    port: u16,
    keys: u64,
    theta: f64,
    value_size: usize,
    warmup: u64,
    ops: u64,
    pipeline: usize,
    seed: u64,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        port: 0,
        keys: 1_000_000,
        theta: 0.99,
        value_size: 100,
        warmup: 2_000_000,
        ops: 3_000_000,
        pipeline: 100,
        seed: 1,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let name = args[i].as_str();
        if name == "--help" || name == "-h" {
            return Err(String::new());
        }
        let value = args
            .get(i + 1)
            .ok_or_else(|| format!("{name} needs a value"))?;
        let bad = || format!("bad value for {name}: {value}");
        match name {
            "--port" => o.port = value.parse().map_err(|_| bad())?,
            "--keys" => o.keys = value.parse().map_err(|_| bad())?,
            "--theta" => o.theta = value.parse().map_err(|_| bad())?,
            "--value-size" => o.value_size = value.parse().map_err(|_| bad())?,
            "--warmup" => o.warmup = value.parse().map_err(|_| bad())?,
            "--ops" => o.ops = value.parse().map_err(|_| bad())?,
            "--pipeline" => o.pipeline = value.parse().map_err(|_| bad())?,
            "--seed" => o.seed = value.parse().map_err(|_| bad())?,
            _ => return Err(format!("unknown option {name}")),
        }
        i += 2;
    }
    if o.port == 0 {
        return Err("--port is required".into());
    }
    if o.keys < 2 || o.pipeline == 0 || !(0.0..1.0).contains(&o.theta) || o.theta == 0.0 {
        return Err("need --keys >= 2, --pipeline >= 1 and 0 < --theta < 1".into());
    }
    Ok(o)
}

fn push_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Reads one reply; true for a value, false for nil. Errors end the run.
fn read_get_reply(r: &mut BufReader<TcpStream>, line: &mut String) -> Result<bool, String> {
    line.clear();
    r.read_line(line).map_err(|e| format!("read: {e}"))?;
    if line.starts_with("$-1") || line.starts_with('_') {
        return Ok(false);
    }
    let len: usize = line
        .strip_prefix('$')
        .and_then(|l| l.trim_end().parse().ok())
        .ok_or_else(|| format!("unexpected GET reply: {line:?}"))?;
    let mut skip = vec![0u8; len + 2];
    r.read_exact(&mut skip).map_err(|e| format!("read: {e}"))?;
    Ok(true)
}

fn read_set_reply(r: &mut BufReader<TcpStream>, line: &mut String) -> Result<(), String> {
    line.clear();
    r.read_line(line).map_err(|e| format!("read: {e}"))?;
    if line.starts_with("+OK") {
        Ok(())
    } else {
        Err(format!("unexpected SET reply: {}", line.trim_end()))
    }
}

fn run(o: &Options) -> Result<String, String> {
    let stream = TcpStream::connect(("127.0.0.1", o.port)).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let mut reader = BufReader::with_capacity(1 << 16, stream);
    let zipf = Zipf::new(o.keys, o.theta);
    let mut rng = Rng(o.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let value = vec![b'v'; o.value_size];
    let total = o.warmup + o.ops;
    let (mut done, mut hits, mut gets, mut sets) = (0u64, 0u64, 0u64, 0u64);
    let mut keys: Vec<Vec<u8>> = Vec::with_capacity(o.pipeline);
    let mut out = Vec::new();
    let mut line = String::new();
    let mut started = Instant::now();
    while done < total {
        if done == o.warmup.min(total) && gets == 0 {
            started = Instant::now();
        }
        let batch = (o.pipeline as u64).min(total - done);
        // Never straddle the end of the warm-up, so counting starts exactly there.
        let batch = if done < o.warmup {
            batch.min(o.warmup - done)
        } else {
            batch
        };
        keys.clear();
        out.clear();
        for _ in 0..batch {
            let key = format!("key:{}", zipf.rank(rng.unit())).into_bytes();
            push_command(&mut out, &[b"GET", &key]);
            keys.push(key);
        }
        writer.write_all(&out).map_err(|e| format!("write: {e}"))?;
        let mut missed = Vec::new();
        for key in &keys {
            if read_get_reply(&mut reader, &mut line)? {
                if done >= o.warmup {
                    hits += 1;
                }
            } else {
                missed.push(key);
            }
        }
        if done >= o.warmup {
            gets += batch;
        }
        out.clear();
        for key in &missed {
            push_command(&mut out, &[b"SET", key, &value]);
        }
        if !missed.is_empty() {
            writer.write_all(&out).map_err(|e| format!("write: {e}"))?;
            for _ in &missed {
                read_set_reply(&mut reader, &mut line)?;
            }
        }
        if done >= o.warmup {
            sets += missed.len() as u64;
        }
        done += batch;
    }
    let secs = started.elapsed().as_secs_f64();
    let ratio = if gets > 0 {
        hits as f64 / gets as f64
    } else {
        0.0
    };
    Ok(format!(
        "cache-bench hits={hits} gets={gets} hit_ratio={ratio:.4} sets={sets} ops/s={:.0} seconds={secs:.1}",
        gets as f64 / secs.max(1e-9)
    ))
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("cache-bench: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cache-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_ranks_are_skewed_and_in_range() {
        let z = Zipf::new(1000, 0.99);
        let mut rng = Rng(7);
        let mut counts = vec![0u32; 1000];
        for _ in 0..200_000 {
            counts[z.rank(rng.unit()) as usize] += 1;
        }
        assert!(counts[0] > counts[1] && counts[1] > counts[10] && counts[10] > counts[500]);
        // Rank 0 takes about 1/zeta(1000) of the draws (≈ 13%).
        let share = counts[0] as f64 / 200_000.0;
        assert!((0.11..0.16).contains(&share), "{share}");
    }
}
