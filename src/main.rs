use clap::{CommandFactory, FromArgMatches, parser::ValueSource};
use ostwerk::{cli::Cli, config, error::cause_chain, telemetry};

/// See Cargo.toml: cheaper per-request allocations than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let matches = Cli::command().get_matches();
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    cli.settings.database_url_defaulted = matches.value_source("database_url") == Some(ValueSource::DefaultValue);
    // Checked before logging starts: an invalid filter would silence the very line saying so.
    if let Err(e) = config::validate_log_filter(&cli.settings.log) {
        eprintln!("error: {e}");
        return std::process::ExitCode::FAILURE;
    }
    let serving = matches!(cli.command, None | Some(ostwerk::cli::Command::Serve { .. }));
    telemetry::init(&cli.settings.log, &cli.settings.log_format, !serving);
    let known = ostwerk::cli::known_variables();
    for (name, nearest) in
        config::unknown_variables(&known, std::env::vars_os().filter_map(|(k, _)| k.into_string().ok()))
    {
        match nearest {
            Some(nearest) => tracing::warn!("unknown variable {name} is ignored; did you mean {nearest}?"),
            None => tracing::warn!("unknown variable {name} is ignored"),
        }
    }
    let json_logs = cli.settings.log_format == "json";
    match ostwerk::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line with each cause once, credentials redacted; also in
            // the JSON log stream, where a log shipper looks for it.
            let message = cause_chain(&e);
            if json_logs {
                tracing::error!(error = %message, "ostwerk failed");
            }
            eprintln!("error: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}
