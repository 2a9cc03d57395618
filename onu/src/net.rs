//! Sockets of the lab's transport, bound where DESIGN.md section 4 says: unicast on
//! 127.0.0.0/8 only, multicast joined on the loopback interface with TTL 0, so that no packet
//! of the lab can leave the machine.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// The loopback interface address multicast is bound to.
pub const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// The default multicast download group (administratively scoped, DESIGN.md section 4).
pub const DEFAULT_GROUP: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(239, 255, 0, 1), 47000);

/// Why an address is refused.
#[derive(Debug, thiserror::Error)]
pub enum AddressError {
    /// Not in 127.0.0.0/8.
    #[error("{0} is not a loopback address: this lab only talks on 127.0.0.0/8")]
    NotLoopback(SocketAddr),
    /// Not an IPv4 multicast group.
    #[error("{0} is not an IPv4 multicast group (224.0.0.0/4; the lab's default is 239.255.0.1)")]
    NotMulticast(SocketAddr),
}

/// The address, if it is an IPv4 loopback address.
pub fn loopback(addr: SocketAddr) -> Result<SocketAddrV4, AddressError> {
    match addr {
        SocketAddr::V4(a) if a.ip().is_loopback() => Ok(a),
        _ => Err(AddressError::NotLoopback(addr)),
    }
}

/// The address, if it is an IPv4 multicast group.
pub fn multicast_group(addr: SocketAddr) -> Result<SocketAddrV4, AddressError> {
    match addr {
        SocketAddr::V4(a) if a.ip().is_multicast() => Ok(a),
        _ => Err(AddressError::NotMulticast(addr)),
    }
}

/// Reads a loopback address from a command line (`127.0.0.1:40001`): a clap value parser.
pub fn parse_loopback(s: &str) -> Result<SocketAddrV4, String> {
    let a: SocketAddr = s
        .parse()
        .map_err(|_| format!("{s:?} is not an address like 127.0.0.1:40001"))?;
    loopback(a).map_err(|e| e.to_string())
}

/// Reads a multicast group from a command line (`239.255.0.1:47000`): a clap value parser.
pub fn parse_group(s: &str) -> Result<SocketAddrV4, String> {
    let a: SocketAddr = s
        .parse()
        .map_err(|_| format!("{s:?} is not an address like 239.255.0.1:47000"))?;
    multicast_group(a).map_err(|e| e.to_string())
}

/// The receive buffer asked for on the lab's sockets (the kernel may grant less).
pub const RECEIVE_BUFFER: usize = 4 << 20;

/// A non-blocking UDP socket bound to a loopback address.
pub fn bind_unicast(addr: SocketAddrV4) -> io::Result<UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    let _ = s.set_recv_buffer_size(RECEIVE_BUFFER);
    s.bind(&SockAddr::from(addr))?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// A non-blocking socket that receives `group` on the loopback interface. Several ONU
/// processes bind the same group and port (SO_REUSEADDR); each receives every datagram.
pub fn bind_multicast_receiver(group: SocketAddrV4) -> io::Result<UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    restrict_multicast(&s)?;
    // Room for a few pipelined windows while the ONU writes flash: the kernel caps this at
    // net.core.rmem_max (an error here is no reason to fail).
    let _ = s.set_recv_buffer_size(RECEIVE_BUFFER);
    // Bound to the group itself, so unicast datagrams to the same port are not received.
    s.bind(&SockAddr::from(group))?;
    s.join_multicast_v4(group.ip(), &LOOPBACK)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// A non-blocking socket that sends to multicast groups, only on the loopback interface.
pub fn bind_multicast_sender(local: SocketAddrV4) -> io::Result<UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    restrict_multicast(&s)?;
    s.bind(&SockAddr::from(local))?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// Multicast out of the loopback interface only, never routed (TTL 0), looped back to the
/// local receivers.
fn restrict_multicast(s: &Socket) -> io::Result<()> {
    s.set_multicast_if_v4(&LOOPBACK)?;
    s.set_multicast_ttl_v4(0)?;
    s.set_multicast_loop_v4(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_and_multicast_addresses_pass() {
        assert!(loopback("127.0.0.1:1".parse().unwrap()).is_ok());
        assert!(loopback("127.3.2.1:1".parse().unwrap()).is_ok());
        assert!(loopback("10.0.0.1:1".parse().unwrap()).is_err());
        assert!(loopback("0.0.0.0:1".parse().unwrap()).is_err());
        assert!(loopback("[::1]:1".parse().unwrap()).is_err());
        assert!(multicast_group("239.255.0.1:47000".parse().unwrap()).is_ok());
        assert!(multicast_group("127.0.0.1:47000".parse().unwrap()).is_err());
    }

    #[test]
    fn multicast_sockets_stay_on_loopback_with_ttl_0() {
        let group = SocketAddrV4::new(Ipv4Addr::new(239, 255, 0, 99), 47999);
        for s in [
            bind_multicast_receiver(group).unwrap(),
            bind_multicast_sender(SocketAddrV4::new(LOOPBACK, 0)).unwrap(),
        ] {
            let s = Socket::from(s);
            assert_eq!(s.multicast_if_v4().unwrap(), LOOPBACK);
            assert_eq!(s.multicast_ttl_v4().unwrap(), 0);
            assert!(s.multicast_loop_v4().unwrap());
        }
    }

    #[test]
    fn every_receiver_of_the_group_gets_each_datagram() {
        let group = SocketAddrV4::new(Ipv4Addr::new(239, 255, 0, 98), 47998);
        let a = bind_multicast_receiver(group).unwrap();
        let b = bind_multicast_receiver(group).unwrap();
        let tx = bind_multicast_sender(SocketAddrV4::new(LOOPBACK, 0)).unwrap();
        tx.send_to(b"window", group).unwrap();
        for rx in [a, b] {
            rx.set_nonblocking(false).unwrap();
            rx.set_read_timeout(Some(std::time::Duration::from_secs(2)))
                .unwrap();
            let mut buf = [0u8; 16];
            let (n, from) = rx.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"window");
            assert!(from.ip().is_loopback());
        }
    }
}
