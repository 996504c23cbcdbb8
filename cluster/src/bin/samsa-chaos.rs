//! `samsa-chaos`: runs a chaos run (see `scripts/chaos.sh`), or checks a stored one again.
//!
//!     samsa-chaos [--duration 90s] [--seed S] [--faults kill-leader,...] [--target processes|containers]
//!     samsa-chaos check DIR
//!
//! Exit status: 0 when no invariant was broken, 1 on any violation, 2 when the run itself could
//! not be carried out.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use samsa_cluster::chaos::{self, ChaosConfig, TargetKind};
use samsa_cluster::schedule::{FaultKind, parse_duration};
use samsa_cluster::summary;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TargetArg {
    Processes,
    Containers,
}

#[derive(Debug, Parser)]
#[command(
    name = "samsa-chaos",
    about = "Kill, pause and partition a samsa cluster under load; prove nothing acknowledged is lost"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// How long to inject faults (e.g. 90s, 30m, 1h30m); the fault in progress finishes.
    #[arg(long, default_value = "90s", value_parser = parse_duration)]
    duration: Duration,
    /// Run this many rounds instead (each round injects every fault kind once, in a seeded
    /// order): `--rounds 100` gives at least 100 faults of every kind.
    #[arg(long)]
    rounds: Option<usize>,
    /// Seed of the fault schedule (default: from the clock; printed so the run can be repeated).
    #[arg(long)]
    seed: Option<u64>,
    /// Fault kinds, comma separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "kill-leader,kill-controller,pause,partition,rolling-restart,kill-all,reassign"
    )]
    faults: Vec<FaultKind>,
    #[arg(long, value_enum, default_value = "processes")]
    target: TargetArg,
    /// Where the history, the workers' and the nodes' logs go (default target/chaos/<target>-<seed>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The samsa binary (processes target).
    #[arg(long, default_value = "target/x86_64-unknown-linux-gnu/release/samsa")]
    samsa_bin: PathBuf,
    /// The image (containers target).
    #[arg(long, default_value = "samsa:latest")]
    image: String,
    /// A Python with confluent-kafka.
    #[arg(long, default_value = ".venv/bin/python")]
    python: PathBuf,
    /// Workload writes per second per producer.
    #[arg(long, default_value_t = 100)]
    rate: u32,
    /// Workload partitions.
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    /// Seconds the cluster may take to recover from a fault before that counts as a violation.
    #[arg(long, default_value_t = 60)]
    recovery_timeout_s: u64,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a stored run directory again and print its summary.
    Check { dir: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Check { dir }) = &cli.command {
        return match chaos::check_dir(dir) {
            Ok(c) => {
                let header = format!("chaos history {}", dir.display());
                print!("{}", summary::render(&header, &c.faults, &c.availability, &c.report));
                if c.report.passed() { ExitCode::SUCCESS } else { ExitCode::from(1) }
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    let seed = cli.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs())
    });
    let target = match cli.target {
        TargetArg::Processes => TargetKind::Processes,
        TargetArg::Containers => TargetKind::Containers,
    };
    let out = cli
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("target/chaos/{}-{seed}", target.name())));
    let cfg = ChaosConfig {
        target,
        duration: cli.duration,
        rounds: cli.rounds,
        seed,
        faults: cli.faults.clone(),
        out_dir: out.clone(),
        samsa_bin: cli.samsa_bin.clone(),
        image: cli.image.clone(),
        python: cli.python.clone(),
        worker_script: PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/workload/chaos_worker.py"
        )),
        nodes: 3,
        partitions: cli.partitions,
        producers: 2,
        consumers: 2,
        rate: cli.rate,
        recovery_timeout: Duration::from_secs(cli.recovery_timeout_s),
    };
    let faults: Vec<&str> = cfg.faults.iter().map(|f| f.name()).collect();
    let length = match cfg.rounds {
        Some(r) => format!("{r} rounds"),
        None => format!("duration {:?}", cfg.duration),
    };
    println!(
        "chaos: target {}, seed {seed}, {length}, faults {}; history in {}",
        target.name(),
        faults.join(","),
        out.display()
    );
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    std::thread::spawn(move || {
        // Ctrl-C ends the fault loop; the run still heals, reads back and checks.
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
        if let Ok(rt) = rt
            && rt.block_on(tokio::signal::ctrl_c()).is_ok()
        {
            eprintln!("chaos: interrupted; healing and checking what was recorded");
            flag.store(true, Ordering::Relaxed);
        }
    });
    match chaos::run(&cfg, interrupted) {
        Ok(outcome) => {
            let header = format!(
                "chaos run: {} ({}), seed {seed}, {}m{:02}s, history {}",
                target.name(),
                outcome.target,
                outcome.elapsed.as_secs() / 60,
                outcome.elapsed.as_secs() % 60,
                out.display()
            );
            print!(
                "{}",
                summary::render(&header, &outcome.faults, &outcome.availability, &outcome.report)
            );
            if outcome.report.passed() { ExitCode::SUCCESS } else { ExitCode::from(1) }
        }
        Err(e) => {
            eprintln!("error: the chaos run could not be carried out: {e:#}");
            ExitCode::from(2)
        }
    }
}
