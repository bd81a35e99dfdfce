package host

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestAdmit(t *testing.T) {
	for _, tc := range []struct {
		host    string
		allowed []string
		ok      bool
		explict bool
	}{
		{"hooks.example.com", []string{"hooks.example.com"}, true, true},
		{"HOOKS.Example.com.", []string{"hooks.example.com"}, true, true},
		{"a.example.com", []string{"*.example.com"}, true, false},
		{"a.b.example.com", []string{"*.example.com"}, true, false},
		{"example.com", []string{"*.example.com"}, false, false},
		{"evilexample.com", []string{"*.example.com"}, false, false},
		{"127.0.0.1", []string{"*.example.com"}, false, false},
		{"127.0.0.1", []string{"*"}, false, false},
		{"127.0.0.1", []string{"127.0.0.1"}, true, true},
		{"10.1.2.3", []string{"10.0.0.0/8"}, true, true},
		{"::1", []string{"[::1]"}, true, true},
		{"fe80::1%eth0", []string{"*", "fe80::1"}, false, false},
		{"127.0.0.1.example.com", []string{"*.example.com"}, true, false}, // a name: its address is checked at dial
		{"a_b.example.com", []string{"*.example.com"}, false, false},
		{"x.example.com@127.0.0.1", []string{"*.example.com"}, false, false},
		{"", []string{"*"}, false, false},
	} {
		a := admit(tc.host, tc.allowed)
		if a.ok != tc.ok || a.ok && a.explicit != tc.explict {
			t.Errorf("admit(%q, %q) = ok %v explicit %v, want %v %v", tc.host, tc.allowed, a.ok, a.explicit, tc.ok, tc.explict)
		}
	}
}

// A name that the allowlist admits only by a wildcard must not reach a
// loopback address; named exactly, it may.
func TestPolicyClientRefusesPrivateAddressesBehindWildcards(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "http://127.0.0.1:"+strings.Split(r.Host, ":")[1]+"/", http.StatusFound)
			return
		}
		w.WriteHeader(204)
	}))
	defer srv.Close()
	port := srv.URL[strings.LastIndexByte(srv.URL, ':')+1:]
	get := func(allowed []string, url string) error {
		resp, err := policyClient(allowed, 30*time.Second).Get(url)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := get([]string{"*"}, "http://localhost:"+port+"/"); err == nil || !strings.Contains(err.Error(), "non-public address") {
		t.Errorf("* reached localhost: %v", err)
	}
	if err := get([]string{"localhost"}, "http://localhost:"+port+"/"); err != nil {
		t.Errorf("localhost named exactly: %v", err)
	}
	// A redirect from an allowed host to one that is not.
	if err := get([]string{"localhost"}, "http://localhost:"+port+"/redirect"); err == nil || !strings.Contains(err.Error(), "not in allowed_hosts") {
		t.Errorf("redirect to 127.0.0.1 followed: %v", err)
	}
}

// Whatever host string a plugin's URL carries, names and wildcards admit
// only DNS names (under the wildcard's domain, not the domain itself), an
// IP literal or a zone never matches a name, and "*" admits no address.
func FuzzAdmitMatchesOnlyNames(f *testing.F) {
	for _, h := range []string{"a.example.com", "example.com", "127.0.0.1", "[::1]", "fe80::1%eth0", "a.example.com.",
		"A.EXAMPLE.COM", "evil.com#.example.com", "x.example.com@127.0.0.1", "0x7f.1", "2130706433", "a..example.com"} {
		f.Add(h)
	}
	names := []string{"*.example.com", "*", "hooks.example.com"}
	f.Fuzz(func(t *testing.T, host string) {
		a := admit(host, names)
		if !a.ok {
			return
		}
		c := canonicalHost(host)
		if !validDNSName(c) {
			t.Fatalf("%q admitted by names but is not a DNS name", host)
		}
		if _, err := netip.ParseAddr(c); err == nil {
			t.Fatalf("IP literal %q admitted by names", host)
		}
		if admit(host, []string{"*.example.com"}).ok && (!strings.HasSuffix(c, ".example.com") || c == "example.com") {
			t.Fatalf("%q admitted by *.example.com", host)
		}
	})
}
