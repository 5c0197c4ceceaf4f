//! The `analyzer` command end to end: real files, real exit codes.

mod cli;
mod fail_closed;
mod nginx_fixtures;
