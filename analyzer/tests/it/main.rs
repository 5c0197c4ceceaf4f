//! The `analyzer` command end to end: real files, real exit codes.

mod cli;
mod fail_closed;
mod merge;
mod nginx_fixtures;
