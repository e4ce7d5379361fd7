use std::process::ExitCode;

use clap::Parser;
use dynamic_toolset::cli::{
    Cli, Command, ConfigCommand, DetectorsCommand, LogArgs, LogFormat, OverridesCommand,
};

fn init_logging(args: &LogArgs) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&args.log_level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match args.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log);
    let result = match cli.command {
        Command::Discover(args) => dynamic_toolset::discover::run(&args),
        Command::Detectors(args) => match &args.command {
            Some(DetectorsCommand::Test(test)) => dynamic_toolset::detectors_cmd::run(test),
            None => dynamic_toolset::discover::list_detectors(&args),
        },
        Command::Run(args) => dynamic_toolset::controller::cmd::run(&args),
        Command::Deliver(args) => dynamic_toolset::deliver::run(&args),
        Command::Get(args) => dynamic_toolset::api::client::run(&args),
        Command::Config(ConfigCommand::Check(args)) => {
            dynamic_toolset::config::check(&args.file, args.no_env).map_err(Into::into)
        }
        Command::Overrides(OverridesCommand::Import(args)) => dynamic_toolset::import::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
