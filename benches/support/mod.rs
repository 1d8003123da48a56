//! Command-line flags shared by the benches that are plain programs
//! (`load`, `scale`): `--name value`, with `_` allowed in numbers.

use std::str::FromStr;

/// The text after `name` on the command line, if given.
pub fn text_arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// The value after `name`, or `default` when absent or unreadable.
pub fn arg<T: FromStr>(name: &str, default: T) -> T {
    text_arg(name)
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}
