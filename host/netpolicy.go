package host

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// The http capability's network policy. A plugin names a URL; the host
// decides, on the parsed and canonical host name only, whether the
// allowlist admits it, and then, on every connection (redirects included),
// whether the address the name resolved to may be reached:
//
//   - an entry is a DNS name ("hooks.example.com"), a wildcard over the
//     names under a domain ("*.example.com": "a.example.com", not
//     "example.com"), an IP literal ("10.0.0.7", "[fd00::1]"), a CIDR
//     ("10.0.0.0/8"), or "*" (any DNS name);
//   - an IP literal in a URL matches only an IP or CIDR entry, never a
//     name or a wildcard; zones ("fe80::1%eth0") never match;
//   - loopback, private, link-local (cloud metadata lives there),
//     unspecified, multicast and shared (100.64/10) addresses are refused
//     unless the entry that admitted the request names that host exactly
//     (a name or an IP literal, not a wildcard) or a CIDR holds the address.

// canonicalHost lowercases a URL's host name and removes a final dot.
func canonicalHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// validDNSName reports whether h is a DNS name: dot-separated labels of
// letters, digits and hyphens, 1 to 63 bytes each, not starting or ending
// with a hyphen.
func validDNSName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// admission is what the allowlist says of a host: whether it may be asked
// for, and whether private addresses are fine for it.
type admission struct {
	ok       bool
	explicit bool           // named exactly: private addresses allowed
	prefixes []netip.Prefix // CIDR and IP entries: addresses always allowed
}

func admit(host string, allowed []string) admission {
	host = canonicalHost(host)
	var a admission
	for _, e := range allowed {
		e = canonicalHost(strings.TrimSpace(e))
		if p, err := netip.ParsePrefix(e); err == nil {
			a.prefixes = append(a.prefixes, p.Masked())
			continue
		}
		if ip, err := netip.ParseAddr(strings.Trim(e, "[]")); err == nil && ip.Zone() == "" {
			a.prefixes = append(a.prefixes, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
		}
	}
	if strings.Contains(host, "%") {
		return admission{} // a zone never matches
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		for _, p := range a.prefixes {
			if p.Contains(ip.Unmap()) {
				a.ok, a.explicit = true, true
				return a
			}
		}
		return admission{}
	}
	if !validDNSName(host) {
		return admission{}
	}
	for _, e := range allowed {
		e = canonicalHost(strings.TrimSpace(e))
		switch {
		case e == host:
			a.ok, a.explicit = true, true
			return a
		case e == "*":
			a.ok = true
		case strings.HasPrefix(e, "*.") && strings.HasSuffix(host, e[1:]) && len(host) > len(e)-1:
			a.ok = true
		}
	}
	return a
}

// hostAllowed reports whether the allowlist admits a URL's host name.
func hostAllowed(host string, allowed []string) bool { return admit(host, allowed).ok }

// publicAddr reports whether ip is an address on the public internet.
func publicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	shared := netip.MustParsePrefix("100.64.0.0/10")
	return !(ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast() || shared.Contains(ip))
}

// policyClient is the http capability's client: redirects and every
// connection are checked against the allowlist.
func policyClient(allowed []string, timeout time.Duration) *http.Client {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		a := admit(host, allowed)
		if !a.ok {
			return nil, fmt.Errorf("host %q is not in allowed_hosts", host)
		}
		d := &net.Dialer{Timeout: timeout, Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return err
			}
			ip := ap.Addr().Unmap()
			if a.explicit || publicAddr(ip) {
				return nil
			}
			for _, p := range a.prefixes {
				if p.Contains(ip) {
					return nil
				}
			}
			return fmt.Errorf("%s resolves to %s, a non-public address; list the host or the address in allowed_hosts to reach it", host, ip)
		}}
		return d.DialContext(ctx, network, addr)
	}
	return &http.Client{
		Timeout: timeout,
		CheckRedirect: func(r *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return fmt.Errorf("more than 5 redirects")
			}
			if !hostAllowed(r.URL.Hostname(), allowed) {
				return fmt.Errorf("redirect to %q, which is not in allowed_hosts", r.URL.Hostname())
			}
			return nil
		},
		// No proxy from the environment: the policy is about where the
		// plugin's bytes go.
		Transport: &http.Transport{DialContext: dial, MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second,
			TLSHandshakeTimeout: timeout, ResponseHeaderTimeout: timeout},
	}
}
