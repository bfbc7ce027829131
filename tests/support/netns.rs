//! Test hosts: network namespaces the tests create themselves, joined to
//! this machine by a veth pair, so backends can have a real, non-loopback
//! address (a real kube-apiserver refuses loopback EndpointSlice
//! addresses). Needs root and iproute2's `ip`; every name and address is
//! unique to this process and removed on drop.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::net::TcpListener;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// One network namespace with an address reachable from this machine.
pub struct TestHost {
    netns: String,
    host_if: String,
    host_ip: IpAddr,
    /// The address inside the namespace.
    pub ip: IpAddr,
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .output()
        .map(|out| out.status.success())
        .unwrap_or(false)
}

impl TestHost {
    /// Creates the namespace, or `None` where that is not possible here
    /// (not root, no `ip`).
    pub fn create() -> Option<TestHost> {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        // 10.213.<pid>.<4n>/30: host side .1, namespace side .2.
        let third = (pid % 256) as u8;
        let base = ((n % 64) * 4) as u8;
        let host_ip = Ipv4Addr::new(10, 213, third, base + 1);
        let ns_ip = Ipv4Addr::new(10, 213, third, base + 2);
        let netns = format!("sy{pid}n{n}");
        let host_if = format!("syh{pid}n{n}");
        let ns_if = format!("syp{pid}n{n}");
        let host = TestHost {
            netns: netns.clone(),
            host_if: host_if.clone(),
            host_ip: IpAddr::V4(host_ip),
            ip: IpAddr::V4(ns_ip),
        };
        let ok = ip(&["netns", "add", &netns])
            && ip(&[
                "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
            ])
            && ip(&["link", "set", &ns_if, "netns", &netns])
            && ip(&["addr", "add", &format!("{host_ip}/30"), "dev", &host_if])
            && ip(&["link", "set", &host_if, "up"])
            && ip(&[
                "-n",
                &netns,
                "addr",
                "add",
                &format!("{ns_ip}/30"),
                "dev",
                &ns_if,
            ])
            && ip(&["-n", &netns, "link", "set", &ns_if, "up"])
            && ip(&["-n", &netns, "link", "set", "lo", "up"]);
        ok.then_some(host)
    }

    /// Makes `ip` a black hole for this machine: the namespace drops every
    /// reply to it (a route of type `blackhole`), so a TCP connect to `ip`
    /// gets neither a SYN-ACK nor a RST and hangs until it times out.
    pub fn blackhole(&self) {
        let host_ip = format!("{}/32", self.host_ip);
        assert!(
            ip(&["-n", &self.netns, "route", "add", "blackhole", &host_ip]),
            "ip route add blackhole {host_ip} in {}",
            self.netns
        );
    }

    /// A listener on `ip:0` inside the namespace. The socket is created on
    /// a thread that has joined the namespace; it stays there after.
    pub fn listener(&self) -> TcpListener {
        let path = format!("/var/run/netns/{}", self.netns);
        let ip = self.ip;
        let std_listener = std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).expect("open the namespace");
            nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
                .expect("join the namespace");
            let listener = std::net::TcpListener::bind((ip, 0)).expect("bind in the namespace");
            listener.set_nonblocking(true).expect("non-blocking");
            listener
        })
        .join()
        .expect("namespace thread");
        TcpListener::from_std(std_listener).expect("tokio listener")
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        ip(&["link", "del", &self.host_if]);
        ip(&["netns", "del", &self.netns]);
    }
}
