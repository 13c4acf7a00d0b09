//! The `pgcache` binary.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_logging(args.verbosity());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pgcache: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(cli::run(args));
    // A plugin stopped by its wall-clock limit may leave a write to a stalled stdout on the
    // runtime's blocking pool: exit without waiting for it.
    runtime.shutdown_background();
    match outcome {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("pgcache: {}", cli::one_line(&e));
            ExitCode::FAILURE
        }
    }
}
