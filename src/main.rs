//! Entry point: parse the command line, set up logging, dispatch to the role.

use clap::Parser;

fn main() -> std::process::ExitCode {
    // The exec guard first: its own parser, no logging, no multi-threaded runtime (see
    // cli::exec_guard).
    if let Some(args) = architect::cli::exec_guard::invoked() {
        return architect::cli::exec_guard::run(args);
    }
    let cli = architect::cli::Cli::parse();
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
            eprintln!("error: {}", architect::cli::error_line(&e));
            std::process::ExitCode::FAILURE
        }
    }
}
