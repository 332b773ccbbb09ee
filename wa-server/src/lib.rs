//! wa-server: an HTTP server over wa-engine (built in issue 5).
