//! When bytes reached a loopback socket, from the kernel's receive
//! timestamp (`SO_TIMESTAMPNS`), not from when this process got around to
//! reading them: the benchmark's proxy and Runtime API emulator share two
//! CPUs with the function they measure, so their own wake-up delay would
//! otherwise be charged to the function.
//!
//! Enable it on a listener before accepting: accepted sockets inherit it,
//! and bytes that arrive before the accept are stamped too. Elsewhere than
//! Linux, or when the kernel gives no stamp, the time of the read is used.

use std::io;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::Interest;
use tokio::net::{TcpListener, TcpStream};

/// Stamps every socket `listener` accepts from now on.
pub fn enable(listener: &TcpListener) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use nix::sys::socket::{setsockopt, sockopt::ReceiveTimestampns};
        setsockopt(listener, ReceiveTimestampns, &true).map_err(io::Error::from)?;
    }
    #[cfg(not(target_os = "linux"))]
    let _ = listener;
    Ok(())
}

/// Bytes wait in a socket buffer for milliseconds; a stamp older than this
/// means this process's wall clock is not the kernel's.
const MAX_STAMP_AGE: Duration = Duration::from_secs(60);

/// A wall-clock kernel stamp as an `Instant` (both clocks read together);
/// `None` when the process's wall clock is not the kernel's, as under
/// libfaketime (tests/date_shift.sh), so the caller uses the read time.
fn to_instant(stamp: SystemTime) -> Option<Instant> {
    let now = Instant::now();
    let age = SystemTime::now()
        .duration_since(stamp)
        .unwrap_or(Duration::ZERO);
    if age > MAX_STAMP_AGE {
        return None;
    }
    Some(now.checked_sub(age).unwrap_or(now))
}

/// One `recvmsg` into `buf` (`peek`: leave the bytes for the next reader);
/// the count and the kernel's stamp of the last bytes read.
#[cfg(target_os = "linux")]
fn recv_stamped(
    stream: &impl std::os::fd::AsRawFd,
    buf: &mut [u8],
    peek: bool,
) -> io::Result<(usize, Option<SystemTime>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use nix::sys::time::TimeSpec;
    let mut iov = [io::IoSliceMut::new(buf)];
    let mut control = nix::cmsg_space!(TimeSpec);
    let flags = if peek {
        MsgFlags::MSG_PEEK
    } else {
        MsgFlags::empty()
    };
    let msg = recvmsg::<()>(stream.as_raw_fd(), &mut iov, Some(&mut control), flags)
        .map_err(io::Error::from)?;
    let mut stamp = None;
    for cmsg in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmTimestampns(ts) = cmsg {
            stamp = Some(UNIX_EPOCH + Duration::new(ts.tv_sec() as u64, ts.tv_nsec() as u32));
        }
    }
    Ok((msg.bytes, stamp))
}

async fn read_inner(
    stream: &TcpStream,
    buf: &mut [u8],
    peek: bool,
) -> io::Result<(usize, Instant)> {
    read_kernel(stream, buf, peek)
        .await
        .map(|(n, stamp)| (n, stamp.unwrap_or_else(Instant::now)))
}

/// Like [`read_inner`], with `None` when the kernel gave no stamp.
async fn read_kernel(
    stream: &TcpStream,
    buf: &mut [u8],
    peek: bool,
) -> io::Result<(usize, Option<Instant>)> {
    #[cfg(target_os = "linux")]
    loop {
        stream.readable().await?;
        match stream.try_io(Interest::READABLE, || recv_stamped(stream, buf, peek)) {
            Ok((n, stamp)) => return Ok((n, stamp.and_then(to_instant))),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = Interest::READABLE;
        let n = if peek {
            stream.peek(buf).await?
        } else {
            loop {
                stream.readable().await?;
                match stream.try_read(buf) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                }
            }
        };
        Ok((n, None))
    }
}

/// Waits (up to a second) until the kernel stamps incoming bytes. The first
/// `SO_TIMESTAMPNS` on a machine switches stamping on asynchronously, so
/// bytes that arrive just after [`enable`] may carry no stamp; call this
/// once while a listener with [`enable`] is open. False if stamps never came
/// (then reads fall back to the time of the read).
pub async fn wait_until_live() -> bool {
    let Ok(listener) = TcpListener::bind("127.0.0.1:0").await else {
        return false;
    };
    if enable(&listener).is_err() {
        return false;
    }
    let Ok(addr) = listener.local_addr() else {
        return false;
    };
    for _ in 0..100 {
        let Ok(mut client) = TcpStream::connect(addr).await else {
            return false;
        };
        let Ok((server, _)) = listener.accept().await else {
            return false;
        };
        if tokio::io::AsyncWriteExt::write_all(&mut client, b"x")
            .await
            .is_err()
        {
            return false;
        }
        let mut one = [0u8; 1];
        if let Ok((_, Some(_))) = read_kernel(&server, &mut one, false).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// Stamps the bytes arriving on one connected socket from now on (a
/// client's, which no listener hands it).
pub fn enable_socket(socket: &std::net::TcpStream) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use nix::sys::socket::{setsockopt, sockopt::ReceiveTimestampns};
        setsockopt(socket, ReceiveTimestampns, &true).map_err(io::Error::from)?;
    }
    #[cfg(not(target_os = "linux"))]
    let _ = socket;
    Ok(())
}

/// A blocking read from a blocking socket (0 at end of stream), with when
/// the bytes arrived: the kernel's stamp where [`enable`] or
/// [`enable_socket`] switched it on, else the time of the read.
pub fn read_blocking(stream: &std::net::TcpStream, buf: &mut [u8]) -> io::Result<(usize, Instant)> {
    #[cfg(target_os = "linux")]
    loop {
        match recv_stamped(stream, buf, false) {
            Ok((n, stamp)) => {
                return Ok((n, stamp.and_then(to_instant).unwrap_or_else(Instant::now)))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        use std::io::Read;
        let n = (&*stream).read(buf)?;
        Ok((n, Instant::now()))
    }
}

/// Reads what is there (0 at end of stream), with when it arrived.
pub async fn read(stream: &TcpStream, buf: &mut [u8]) -> io::Result<(usize, Instant)> {
    read_inner(stream, buf, false).await
}

/// When the first bytes waiting on `stream` arrived, leaving them unread.
pub async fn first_arrival(stream: &TcpStream) -> io::Result<Instant> {
    let mut one = [0u8; 1];
    read_inner(stream, &mut one, true).await.map(|(_, t)| t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn stamps_bytes_with_when_they_arrived_not_when_read() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        enable(&listener).unwrap();
        assert!(wait_until_live().await, "the kernel never stamped");
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let before = Instant::now();
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let after_write = Instant::now();
        // Read late: the stamp must still say when the bytes came.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (server, _) = listener.accept().await.unwrap();
        let peeked = first_arrival(&server).await.unwrap();
        let mut buf = [0u8; 64];
        let (n, read_at) = read(&server, &mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"GET / HTTP/1.1\r\n\r\n", "peek left the bytes");
        let slack = Duration::from_millis(5);
        for t in [peeked, read_at] {
            assert!(t + slack >= before, "{:?} before the write", before - t);
            assert!(
                t <= after_write + slack,
                "stamped {:?} after the write, not at arrival",
                t - after_write
            );
        }
    }
}
