//! [`HttpListener`]: the TCP listener `wa-server` serves on. It exists for one answer the
//! application never sees: hyper refuses a request line whose target is longer than 65534
//! bytes (`414 URI Too Long`) by itself, before any router or middleware runs, with an
//! empty body. The listener's connections replace exactly that automatic answer with the
//! API's JSON error (`uri_too_long`), like every other error.
//!
//! How it recognises it: the read side remembers that a line longer than hyper's limit
//! arrived, and the write side then replaces a write that is, in full, hyper's bodyless 414
//! head (`HTTP/1.x 414 ...`, `content-length: 0`, ending the head). Everything else passes
//! through unchanged, byte for byte.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::error::ApiError;

/// hyper's limit on a request target (`MAX_URI_LEN` in hyper's `proto/h1/role.rs`).
const HYPER_MAX_URI: usize = u16::MAX as usize - 1;

/// A TCP listener whose connections answer an over-long request line with the JSON error
/// body. Use it with `axum::serve` in place of a `tokio::net::TcpListener`.
#[derive(Debug)]
pub struct HttpListener {
    inner: TcpListener,
}

impl HttpListener {
    /// Wraps a bound listener.
    pub fn new(inner: TcpListener) -> Self {
        Self { inner }
    }
}

impl axum::serve::Listener for HttpListener {
    type Io = GuardedIo<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        (GuardedIo::new(io), addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// One connection of an [`HttpListener`].
#[derive(Debug)]
pub struct GuardedIo<T> {
    inner: T,
    /// Bytes read since the last line feed.
    line: usize,
    /// A line longer than hyper's target limit was read.
    long_line: bool,
    /// A replacement answer still to be written, and how much of it was.
    out: Vec<u8>,
    written: usize,
}

impl<T> GuardedIo<T> {
    fn new(inner: T) -> Self {
        Self {
            inner,
            line: 0,
            long_line: false,
            out: Vec::new(),
            written: 0,
        }
    }

    /// Notes the line lengths of bytes just read.
    fn saw(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while let Some(at) = rest.iter().position(|b| *b == b'\n') {
            self.long_line |= self.line + at > HYPER_MAX_URI;
            self.line = 0;
            rest = &rest[at + 1..];
        }
        self.line = self.line.saturating_add(rest.len());
        self.long_line |= self.line > HYPER_MAX_URI;
    }
}

/// True when `buf` is, in full, the bodyless 414 head hyper writes by itself.
fn is_automatic_414(buf: &[u8]) -> bool {
    (buf.starts_with(b"HTTP/1.1 414 ") || buf.starts_with(b"HTTP/1.0 414 "))
        && buf.ends_with(b"\r\n\r\n")
        && buf
            .windows(b"\r\ncontent-length: 0\r\n".len())
            .any(|w| w.eq_ignore_ascii_case(b"\r\ncontent-length: 0\r\n"))
}

/// The JSON answer written instead.
fn json_414() -> Vec<u8> {
    let body = crate::error::json_body(&ApiError::UriTooLong);
    let mut out = format!(
        "HTTP/1.1 414 URI Too Long\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

impl<T: AsyncWrite + Unpin> GuardedIo<T> {
    /// Writes what is left of a replacement answer.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.out.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.out.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for GuardedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = ready!(Pin::new(&mut self.inner).poll_read(cx, buf));
        if result.is_ok() {
            let fresh = buf.filled()[before..].to_vec();
            self.saw(&fresh);
        }
        Poll::Ready(result)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for GuardedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.drain(cx))?;
        if self.long_line && is_automatic_414(buf) {
            self.long_line = false;
            self.out = json_414();
            self.written = 0;
            // Taken over: what is not written now is written by the next flush/shutdown.
            if let Poll::Ready(Err(e)) = self.drain(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.long_line || !self.out.is_empty() {
            let first = bufs
                .iter()
                .find(|b| !b.is_empty())
                .map_or(&[][..], |b| &**b);
            return self.poll_write(cx, first);
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_bodyless_414_is_recognised() {
        let auto = b"HTTP/1.1 414 URI Too Long\r\nconnection: close\r\ncontent-length: 0\r\n\
                     date: Mon, 07 Dec 2026 12:14:20 GMT\r\n\r\n";
        assert!(is_automatic_414(auto));
        assert!(!is_automatic_414(
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
        ));
        assert!(!is_automatic_414(
            b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 56\r\n\r\n{}"
        ));
    }

    #[test]
    fn long_lines_are_noticed_across_reads() {
        let mut io = GuardedIo::new(());
        io.saw(b"GET /");
        io.saw(&vec![b'a'; HYPER_MAX_URI]);
        assert!(io.long_line);
        let mut io = GuardedIo::new(());
        io.saw(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n");
        io.saw(&vec![b'a'; 1000]);
        assert!(!io.long_line);
    }
}
