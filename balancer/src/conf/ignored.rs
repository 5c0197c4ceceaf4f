//! Directives the reference does not act on because they change nothing a
//! request gets: which server it goes to, what that server receives, the
//! status and body the client is answered with. Each is in the nginx
//! differential fuzzer's grammar (`differential/src/grammar.rs`, whose
//! tests check that every name here is there), so that claim is tested
//! against real nginx, not read from its docs. Any other directive nginx
//! has is refused when a config is run, and listed as not modelled when
//! one is only read.

/// Accepted and listed as not acted on.
pub const NEUTRAL: &[&str] = &[
    // The process around the workers.
    "user",
    "pid",
    "error_log",
    "worker_rlimit_nofile",
    "pcre_jit",
    "worker_priority",
    // How connections are waited on and taken.
    "use",
    "multi_accept",
    "accept_mutex_delay",
    // How bytes are written to the client.
    "sendfile",
    "tcp_nopush",
    "tcp_nodelay",
    "postpone_output",
    "output_buffers",
    "send_timeout",
    "reset_timedout_connection",
    "msie_padding",
    "msie_refresh",
    // Tables sized at start.
    "types_hash_max_size",
    "types_hash_bucket_size",
    "server_names_hash_bucket_size",
    "server_names_hash_max_size",
    "variables_hash_max_size",
    "variables_hash_bucket_size",
    "proxy_headers_hash_max_size",
    "proxy_headers_hash_bucket_size",
    // Files and types, for what the proxy serves from disk (nothing here).
    "types",
    "default_type",
    "root",
    "index",
    "log_not_found",
    "open_file_cache",
    "open_file_cache_valid",
    "server_tokens",
    "server_name_in_redirect",
    "charset",
    "add_header",
    // TLS settings without a `listen ... ssl` to use them.
    "ssl_protocols",
    "ssl_prefer_server_ciphers",
    "ssl_ciphers",
    "ssl_session_cache",
    "ssl_session_timeout",
    // gzip for the types nginx compresses by default (text/html).
    "gzip",
    "gzip_vary",
    "gzip_proxied",
    "gzip_comp_level",
    "gzip_buffers",
    "gzip_http_version",
    "gzip_min_length",
    // Names are looked up at start; nothing resolves at run time here.
    "resolver",
    "resolver_timeout",
    // Where and how much nginx buffers on the way through.
    "client_body_temp_path",
    "proxy_temp_path",
    "fastcgi_temp_path",
    "uwsgi_temp_path",
    "scgi_temp_path",
    "client_body_buffer_size",
    "proxy_buffering",
    "proxy_buffers",
    "proxy_busy_buffers_size",
    "proxy_temp_file_write_size",
    "proxy_max_temp_file_size",
];

/// The neutral directives whose one argument is `on` or `off`, checked as
/// nginx checks them (`gzip maybe` is refused, here as by `nginx -t`).
pub(super) const ON_OFF: &[&str] = &[
    "sendfile",
    "tcp_nopush",
    "tcp_nodelay",
    "reset_timedout_connection",
    "msie_padding",
    "msie_refresh",
    "log_not_found",
    "server_name_in_redirect",
    "ssl_prefer_server_ciphers",
    "gzip",
    "gzip_vary",
    "proxy_buffering",
    "pcre_jit",
];
