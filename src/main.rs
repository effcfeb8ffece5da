//! The `fallwatch` command: parses arguments, sets up logging, runs, maps errors to one line on
//! standard error and an exit status. All work happens in the library and in `cli/`.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::install_panic_hook();
    let args = <cli::Args as clap::Parser>::parse();
    cli::init_logging(args.verbose, args.quiet);
    match cli::run(args) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS, // e.g. `fallwatch probe x | head`
        Err(e) => {
            // One line, no backtrace: the message already carries its context. fallwatch's own
            // error prints its cause chain itself; anything else gets anyhow's chain.
            let text = match e.downcast_ref::<fallwatch::Error>() {
                Some(fe) => fe.to_string(),
                None => format!("{e:#}"),
            };
            eprintln!("fallwatch: error: {}", one_line(&text));
            ExitCode::from(1)
        }
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
