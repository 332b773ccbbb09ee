//! wa-sandbox: a simulated WhatsApp server for offline tests (built in issue 3).
