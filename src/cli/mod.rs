//! Command-line interface: argument definitions and one function per subcommand. Standard output
//! carries only results (JSON Lines); everything for people goes to standard error.

mod analyze;
mod bench;
mod detect;
mod eval;
mod probe;
mod synth;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// fallwatch: catches objects thrown or dropped from high-rise buildings, says which floor and
/// window bay they came from, and saves evidence clips.
#[derive(Parser, Debug)]
#[command(name = "fallwatch", version, about, long_about = None)]
pub struct Args {
    /// More log output on stderr (-v: debug, -vv: trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr (no progress, no summary).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Analyse a video file or RTSP stream; write one directory per event and print each event
    /// as a JSON line.
    Analyze(analyze::AnalyzeArgs),
    /// Show what a source carries (stream info as JSON), optionally every frame's time.
    Probe(probe::ProbeArgs),
    /// Speed figures measured as ratios in one run (e.g. decode vs the ffmpeg CLI).
    Bench(bench::BenchArgs),
    /// Run the object detector on images; print one JSON line of boxes per image.
    Detect(detect::DetectArgs),
    /// Generate synthetic camera clips with exact ground truth (one clip or an evaluation set).
    Synth(synth::SynthArgs),
    /// Run the analysis on a folder of synthetic clips and score it against their ground truth.
    Eval(eval::EvalArgs),
}

/// Source options shared by the commands that read video.
#[derive(clap::Args, Debug, Clone)]
pub struct SourceArgs {
    /// RTSP transport.
    #[arg(long, value_enum, default_value = "tcp")]
    pub transport: TransportArg,
    /// Time allowed to connect to a stream, milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub connect_timeout_ms: u64,
    /// Longest wait for data from a stream, milliseconds.
    #[arg(long, default_value_t = 5_000)]
    pub read_timeout_ms: u64,
    /// Decoder threads per source (1 uses the CPU most efficiently).
    #[arg(long, default_value_t = 1)]
    pub decoder_threads: usize,
}

/// Options of the shared stages (detector, evidence) for the commands that analyse video.
#[derive(clap::Args, Debug, Clone)]
pub struct PipelineArgs {
    /// Judge on physics alone: do not run the object detector (no ONNX Runtime needed).
    #[arg(long)]
    pub no_detect: bool,
}

impl PipelineArgs {
    pub fn config(&self) -> fallwatch::pipeline::PipelineConfig {
        let mut cfg = fallwatch::pipeline::PipelineConfig::default();
        if self.no_detect {
            cfg.detect.enabled = false;
        }
        cfg
    }
}

#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum TransportArg {
    Tcp,
    Udp,
}

impl SourceArgs {
    pub fn spec(&self, url: &str) -> fallwatch::ingest::SourceSpec {
        let mut spec = fallwatch::ingest::SourceSpec::new(url);
        spec.transport = match self.transport {
            TransportArg::Tcp => fallwatch::ingest::Transport::Tcp,
            TransportArg::Udp => fallwatch::ingest::Transport::Udp,
        };
        spec.connect_timeout_ms = self.connect_timeout_ms;
        spec.read_timeout_ms = self.read_timeout_ms;
        spec.decoder_threads = self.decoder_threads.max(1);
        spec
    }
}

/// Runs the chosen subcommand.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Analyze(a) => analyze::run(a, args.quiet),
        Command::Probe(a) => probe::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Detect(a) => detect::run(a),
        Command::Synth(a) => synth::run(a, args.quiet),
        Command::Eval(a) => eval::run(a, args.quiet),
    }
}

/// Logs go to stderr: warnings and up by default, more with -v, only errors with -q.
/// `RUST_LOG` overrides.
pub fn init_logging(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .init();
}

/// A panic (a bug) still ends with one line on stderr and exit status 101, not a backtrace,
/// unless RUST_BACKTRACE asks for one.
pub fn install_panic_hook() {
    if std::env::var_os("RUST_BACKTRACE").is_some() {
        return;
    }
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let thread = std::thread::current().name().unwrap_or("?").to_string();
        eprintln!("fallwatch: internal error in thread {thread}{place}: {msg}");
    }));
}

/// Installs Ctrl-C handling: the first press cancels gracefully (sources stop, stages drain,
/// events in progress are finished); the second exits at once.
pub fn install_ctrlc(cancel: fallwatch::ingest::Cancel) {
    let pressed = std::sync::atomic::AtomicBool::new(false);
    let _ = ctrlc::set_handler(move || {
        if pressed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("fallwatch: stopping (press Ctrl-C again to quit at once)");
        cancel.cancel();
    });
}
