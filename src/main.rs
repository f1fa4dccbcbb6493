//! Entry point: parse the command line, set up logging, dispatch to the role.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = architect::cli::Cli::parse();
    // No logging and no runtime threads for the guard: it must be the only thread to wait for
    // its signals (see cli::exec_guard).
    if let architect::cli::Command::ExecGuard(args) = &cli.command {
        return architect::cli::exec_guard::run(args.clone());
    }
    architect::cli::init_logging(cli.log_format);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(architect::cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
