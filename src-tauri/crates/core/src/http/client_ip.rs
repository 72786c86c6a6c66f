//! The client's address as an extractor, for per-network rate limits and for logs — never as a
//! credential (see DESIGN.md, audiences). It is the connection's peer (from
//! `into_make_service_with_connect_info`; unspecified when served without it, e.g. in-process router
//! tests), unless that peer is one of `[server] trusted_proxies`: then `X-Forwarded-For` is read from the
//! right, skipping the trusted hops, and the first untrusted address is the client. Without trusted
//! proxies the header is ignored, so a guest cannot pick the address its rate limit is counted under.

use crate::config::Cidr;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

pub struct ClientIp(pub IpAddr);

/// `[server] trusted_proxies`, put into every request's extensions by the router.
#[derive(Clone, Default)]
pub struct TrustedProxies(pub Arc<[Cidr]>);

impl TrustedProxies {
    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    /// The client behind `peer`, given the request's headers.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map_while(|a| a.trim().parse().ok())
            .collect();
        hops.iter()
            .rev()
            .find(|ip| !self.trusts(**ip))
            .or(hops.first())
            .copied()
            .unwrap_or(peer)
    }
}

/// The client's address of a request, from its extensions and headers (see the module doc).
pub fn client_of(extensions: &Extensions, headers: &HeaderMap) -> IpAddr {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    match extensions.get::<TrustedProxies>() {
        Some(proxies) => proxies.client(peer, headers),
        None => peer,
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_of(&parts.extensions, &parts.headers)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let none = TrustedProxies::default();
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let phone: IpAddr = "203.0.113.7".parse().unwrap();
        assert_eq!(none.client(local, &xff("203.0.113.7")), local);
        let proxies = TrustedProxies(vec![Cidr::parse("127.0.0.0/8").unwrap()].into());
        assert_eq!(proxies.client(local, &xff("203.0.113.7")), phone);
        // The phone forged its own header: the proxy appended the real address, read from the right.
        assert_eq!(proxies.client(local, &xff("1.2.3.4, 203.0.113.7")), phone);
        assert_eq!(proxies.client(local, &HeaderMap::new()), local);
        let stranger: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(proxies.client(stranger, &xff("1.2.3.4")), stranger);
    }
}
