use clap::Parser;
use ostwerk::{cli::Cli, telemetry};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let serving = matches!(cli.command, None | Some(ostwerk::cli::Command::Serve));
    telemetry::init(&cli.settings.log, &cli.settings.log_format, !serving);
    match ostwerk::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "ostwerk failed");
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
