//! The `analyzer` command end to end: real files, real exit codes.

mod cli;
mod nginx_fixtures;
