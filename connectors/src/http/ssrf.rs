//! The SSRF guard: Patchbay fetches URLs that tenants type in (webhook targets, self-hosted API
//! bases, OAuth endpoints), so without a guard a tenant could make our servers reach the cloud
//! metadata service, the database on the private network, or localhost admin ports.
//!
//! Two checks together close the hole:
//! * [`check_url`] runs before every hop (first request and each redirect) and refuses schemes
//!   other than http/https and IP-literal hosts in a refused range — IP literals never reach a
//!   resolver, so this is the only place they can be stopped.
//! * [`GuardedResolver`] is the DNS resolver of the reqwest client: it returns only permitted
//!   addresses, and reqwest connects to exactly what it returned, so a name cannot be checked
//!   against one address and then connect to another (no DNS-rebinding window).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use async_trait::async_trait;
use ipnet::IpNet;
use url::{Host, Url};

use crate::error::ConnectorError;

/// Resolves a host name to socket addresses. The client's default is the system resolver; tests
/// inject fixed answers.
#[async_trait]
pub trait NameLookup: Send + Sync + 'static {
    /// All addresses `host` resolves to. `port` is 0 when the caller does not know it (reqwest
    /// then uses the URL's port).
    async fn lookup(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>>;
}

/// The operating system's resolver, through `tokio::net::lookup_host`.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemLookup;

#[async_trait]
impl NameLookup for SystemLookup {
    async fn lookup(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        Ok(tokio::net::lookup_host((host, port)).await?.collect())
    }
}

/// Checks one address against the guard. `Err` names the refused class, e.g. `"loopback"`.
/// An address inside one of the `allow` nets is always permitted.
pub fn check_ip(ip: IpAddr, allow: &[IpNet]) -> Result<(), &'static str> {
    let embedded = match ip {
        IpAddr::V4(_) => None,
        IpAddr::V6(v6) => embedded_v4(v6),
    };
    let allowed = |ip: IpAddr| allow.iter().any(|net| net.contains(&ip));
    if allowed(ip) || embedded.is_some_and(|v4| allowed(IpAddr::V4(v4))) {
        return Ok(());
    }
    match ip {
        IpAddr::V4(v4) => refused_v4(v4).map_or(Ok(()), Err),
        IpAddr::V6(v6) => refused_v6(v6).map_or(Ok(()), Err),
    }
}

/// The class an IPv4 address is refused for, if any. Order matters: the most specific name wins
/// (169.254.169.254 is "cloud metadata", not merely "link-local").
fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(100, 100, 100, 200) {
        Some("cloud metadata")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if a == 0 {
        Some("this-network (0.0.0.0/8)")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared address space (CGNAT)")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if ip.is_broadcast() {
        Some("broadcast")
    } else if a >= 240 {
        Some("reserved (240.0.0.0/4)")
    } else if a == 192 && b == 0 && c == 0 {
        Some("IETF protocol assignments (192.0.0.0/24)")
    } else if a == 198 && (b == 18 || b == 19) {
        Some("benchmarking (198.18.0.0/15)")
    } else {
        None
    }
}

/// The class an IPv6 address is refused for, if any. Addresses that carry an IPv4 address are
/// judged by the IPv4 rules on that address.
fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        Some("cloud metadata")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if let Some(v4) = embedded_v4(ip) {
        refused_v4(v4)
    } else if first & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else if first & 0xffc0 == 0xfec0 {
        Some("site-local")
    } else if first & 0xfe00 == 0xfc00 {
        Some("unique-local")
    } else if ip.is_multicast() {
        Some("multicast")
    } else {
        None
    }
}

/// The IPv4 address inside an IPv6 address that carries one: IPv4-mapped (`::ffff:a.b.c.d`),
/// IPv4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`, local-use `64:ff9b:1::/48`) and 6to4
/// (`2002:AABB:CCDD::/48`). `::` and `::1` are not IPv4-compatible addresses.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        [0, 0, 0, 0, 0, 0xffff, hi, lo] => Some(low(hi, lo)),
        [0, 0, 0, 0, 0, 0, 0, 0 | 1] => None,
        [0, 0, 0, 0, 0, 0, hi, lo] => Some(low(hi, lo)),
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(low(hi, lo)),
        [0x64, 0xff9b, 1, _, _, _, hi, lo] => Some(low(hi, lo)),
        [0x2002, hi, lo, ..] => Some(low(hi, lo)),
        _ => None,
    }
}

/// Checks a URL without sending it: http/https only, and an IP-literal host must pass
/// [`check_ip`]. Names are left to [`GuardedResolver`] at connect time. Messages name the host,
/// never the query string.
pub(crate) fn check_url(url: &Url, allow: &[IpNet]) -> Result<(), ConnectorError> {
    match url.scheme() {
        "http" | "https" => {}
        other => {
            return Err(ConnectorError::permanent(format!(
                "refused URL scheme '{other}': only http and https are allowed"
            )))
        }
    }
    let ip = match url.host() {
        None => return Err(ConnectorError::permanent("refused URL without a host")),
        Some(Host::Domain(_)) => return Ok(()),
        Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
    };
    check_ip(ip, allow).map_err(|class| {
        ConnectorError::permanent(format!("refused to connect to {ip}: {class} address"))
    })
}

/// The reqwest DNS resolver that drops refused addresses. When nothing permitted remains the
/// lookup fails with [`Refused`], which the client turns into a Permanent error.
pub(crate) struct GuardedResolver {
    lookup: Arc<dyn NameLookup>,
    allow: Arc<[IpNet]>,
}

impl GuardedResolver {
    pub(crate) fn new(lookup: Arc<dyn NameLookup>, allow: Arc<[IpNet]>) -> Self {
        GuardedResolver { lookup, allow }
    }

    /// The permitted addresses of `host`, or why there are none.
    pub(crate) async fn permitted(
        &self,
        host: &str,
    ) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
        let addrs = self.lookup.lookup(host, 0).await?;
        let mut refused = None;
        let permitted: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|addr| match check_ip(addr.ip(), &self.allow) {
                Ok(()) => true,
                Err(class) => {
                    refused.get_or_insert((addr.ip(), class));
                    false
                }
            })
            .collect();
        match (permitted.is_empty(), refused) {
            (false, refused) => {
                if let Some((ip, class)) = refused {
                    tracing::warn!(host, %ip, class, "dropped refused address from DNS answer");
                }
                Ok(permitted)
            }
            (true, Some((ip, class))) => Err(Box::new(Refused {
                message: format!(
                    "refused to connect to {host}: it resolves to {ip}, a {class} address"
                ),
            })),
            (true, None) => Err(format!("{host} resolved to no addresses").into()),
        }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let this = GuardedResolver {
            lookup: self.lookup.clone(),
            allow: self.allow.clone(),
        };
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = this.permitted(&host).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A DNS answer held only refused addresses. Travels through reqwest's error chain so the
/// client can report it as Permanent rather than as a network failure.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct Refused {
    pub(crate) message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(s: &str) -> &'static str {
        check_ip(s.parse().unwrap(), &[]).expect_err(s)
    }

    #[test]
    fn refuses_every_class() {
        let table = [
            ("127.0.0.1", "loopback"),
            ("127.255.255.254", "loopback"),
            ("::1", "loopback"),
            ("0.0.0.0", "unspecified"),
            ("::", "unspecified"),
            ("0.1.2.3", "this-network (0.0.0.0/8)"),
            ("10.0.0.5", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.1.1", "link-local"),
            ("fe80::1", "link-local"),
            ("febf::1", "link-local"),
            ("fec0::1", "site-local"),
            ("100.64.0.1", "shared address space (CGNAT)"),
            ("100.127.255.255", "shared address space (CGNAT)"),
            ("169.254.169.254", "cloud metadata"),
            ("fd00:ec2::254", "cloud metadata"),
            ("100.100.100.200", "cloud metadata"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("ff02::1", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("240.0.0.1", "reserved (240.0.0.0/4)"),
            ("fc00::1", "unique-local"),
            ("fd12:3456::1", "unique-local"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.1.2.3", "private"),
            ("::ffff:169.254.169.254", "cloud metadata"),
            ("::10.1.2.3", "private"),
            ("64:ff9b::a9fe:a9fe", "cloud metadata"),
            ("64:ff9b::7f00:1", "loopback"),
            ("64:ff9b:1::c0a8:101", "private"),
            ("2002:7f00:1::1", "loopback"),
            ("192.0.0.8", "IETF protocol assignments (192.0.0.0/24)"),
            ("198.18.0.1", "benchmarking (198.18.0.0/15)"),
            ("198.19.255.255", "benchmarking (198.18.0.0/15)"),
        ];
        for (ip, class) in table {
            assert_eq!(refused(ip), class, "{ip}");
        }
    }

    #[test]
    fn allows_public_addresses() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700::1111",
            "2001:4860:4860::8888",
            "172.32.0.1",
            "100.128.0.1",
            "198.20.0.1",
            "192.0.1.1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert_eq!(check_ip(ip.parse().unwrap(), &[]), Ok(()), "{ip}");
        }
    }

    #[test]
    fn allow_list_overrides_the_guard() {
        let allow: Vec<IpNet> = vec![
            "127.0.0.1/32".parse().unwrap(),
            "10.1.0.0/16".parse().unwrap(),
        ];
        assert_eq!(check_ip("127.0.0.1".parse().unwrap(), &allow), Ok(()));
        assert_eq!(
            check_ip("::ffff:127.0.0.1".parse().unwrap(), &allow),
            Ok(())
        );
        assert_eq!(check_ip("10.1.200.3".parse().unwrap(), &allow), Ok(()));
        assert_eq!(
            check_ip("127.0.0.2".parse().unwrap(), &allow),
            Err("loopback")
        );
        assert_eq!(
            check_ip("10.2.0.1".parse().unwrap(), &allow),
            Err("private")
        );
        assert_eq!(check_ip("::1".parse().unwrap(), &allow), Err("loopback"));
    }

    #[test]
    fn check_url_refuses_other_schemes_and_refused_literals() {
        for url in [
            "ftp://example.com/x",
            "file:///etc/passwd",
            "gopher://example.com/",
        ] {
            let err = check_url(&Url::parse(url).unwrap(), &[]).expect_err(url);
            assert!(err.message.contains("scheme"), "{url}: {}", err.message);
        }
        for (url, class) in [
            ("http://127.0.0.1:8080/admin", "loopback"),
            ("http://2130706433/", "loopback"),
            ("http://0x7f.1/", "loopback"),
            ("http://[::1]/", "loopback"),
            ("http://0.0.0.0/", "unspecified"),
            ("http://[::]/", "unspecified"),
            ("http://0.0.0.1/", "this-network"),
            ("http://10.0.0.5/", "private"),
            ("http://172.16.3.4/", "private"),
            ("https://192.168.0.1/", "private"),
            ("http://169.254.1.1/", "link-local"),
            ("http://[fe80::1]/", "link-local"),
            ("http://100.64.1.1/", "CGNAT"),
            ("http://169.254.169.254/latest/meta-data", "cloud metadata"),
            ("http://[fd00:ec2::254]/", "cloud metadata"),
            ("http://100.100.100.200/", "cloud metadata"),
            ("http://224.0.0.1/", "multicast"),
            ("http://255.255.255.255/", "broadcast"),
            ("http://[fc00::1]/", "unique-local"),
            ("http://[::ffff:169.254.169.254]/", "cloud metadata"),
            ("http://[64:ff9b::a00:5]/", "private"),
            ("http://192.0.0.1/", "IETF"),
            ("http://198.18.0.1/", "benchmarking"),
        ] {
            let err = check_url(&Url::parse(url).unwrap(), &[]).expect_err(url);
            assert_eq!(err.class, crate::ErrorClass::Permanent);
            assert!(err.message.contains(class), "{url}: {}", err.message);
        }
        for url in [
            "https://example.com/x?token=1",
            "http://8.8.8.8/",
            "https://[2606:4700::1111]/",
        ] {
            assert!(check_url(&Url::parse(url).unwrap(), &[]).is_ok(), "{url}");
        }
    }

    #[test]
    fn check_url_messages_leave_out_the_query() {
        let url = Url::parse("http://10.0.0.1/x?api_key=hunter2").unwrap();
        let err = check_url(&url, &[]).unwrap_err();
        assert!(!err.message.contains("hunter2"), "{}", err.message);
    }
}
