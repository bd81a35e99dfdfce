package jetstream

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Conn is a connection to NATS: to an external server or cluster (url), or
// to a nats-server embedded in this process, which it owns.
type Conn struct {
	NC     *nats.Conn
	server *server.Server
	lock   *os.File
}

// EmbeddedConfig is an in-process nats-server.
type EmbeddedConfig struct {
	// DataDir holds the server's JetStream files. Only one process may
	// use a data directory at a time (it is locked).
	DataDir string
	// Listen, when set (host:port), lets other processes — more runners,
	// the nats CLI, `eventpipe replay` while a run is going — connect.
	// Empty: no port is opened; only this process reaches the server.
	Listen string
	// SyncAlways makes the server fsync every write before acknowledging
	// it (survives power loss, not only a killed process), at a cost.
	SyncAlways bool
}

// DialConfig is how to reach NATS.
type DialConfig struct {
	URL         string // "" means the embedded server
	Credentials string // a .creds file for an external server
	Name        string // the connection's name, as servers list it
	Embedded    EmbeddedConfig
}

// Dial connects as cfg says, starting the embedded server when URL is
// empty. The connection reconnects by itself (forever) when a server of
// an external cluster goes away.
func Dial(cfg DialConfig) (*Conn, error) {
	c := &Conn{}
	opts := []nats.Option{nats.Name(cfg.Name), nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond)}
	if cfg.URL != "" {
		if cfg.Credentials != "" {
			opts = append(opts, nats.UserCredentials(cfg.Credentials))
		}
		nc, err := nats.Connect(cfg.URL, opts...)
		if err != nil {
			return nil, fmt.Errorf("connect %s: %w", cfg.URL, err)
		}
		c.NC = nc
		return c, nil
	}
	var err error
	if c.lock, err = lockDir(cfg.Embedded.DataDir); err != nil {
		return nil, err
	}
	so := &server.Options{
		ServerName: "eventpipe",
		JetStream:  true,
		StoreDir:   cfg.Embedded.DataDir,
		SyncAlways: cfg.Embedded.SyncAlways,
		NoSigs:     true,
		NoLog:      true,
		DontListen: cfg.Embedded.Listen == "",
	}
	if cfg.Embedded.Listen != "" {
		host, port, err := net.SplitHostPort(cfg.Embedded.Listen)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("listen %q: %w", cfg.Embedded.Listen, err)
		}
		so.Host = host
		if so.Port, err = strconv.Atoi(port); err != nil {
			c.Close()
			return nil, fmt.Errorf("listen %q: bad port", cfg.Embedded.Listen)
		}
	}
	if c.server, err = server.NewServer(so); err != nil {
		c.Close()
		return nil, fmt.Errorf("embedded nats-server: %w", err)
	}
	go c.server.Start()
	if !c.server.ReadyForConnections(60 * time.Second) {
		c.Close()
		return nil, errors.New("embedded nats-server: not ready after 60s (is the listen address in use?)")
	}
	opts = append(opts, nats.InProcessServer(c.server))
	if c.NC, err = nats.Connect("", opts...); err != nil {
		c.Close()
		return nil, fmt.Errorf("embedded nats-server: %w", err)
	}
	return c, nil
}

// ClientURL is the address other processes reach the embedded server at,
// or "" when it does not listen (or is not embedded).
func (c *Conn) ClientURL() string {
	if c.server == nil || c.server.Addr() == nil {
		return ""
	}
	return c.server.ClientURL()
}

// Close drains and closes the connection and stops the embedded server.
func (c *Conn) Close() {
	if c.NC != nil {
		// Flush, not Drain: every publish was waited for already, and a
		// flush makes sure the last acknowledgements reached the server
		// (a drain also waits out the consumer's pending pulls, ~20 ms).
		_ = c.NC.FlushTimeout(10 * time.Second)
		c.NC.Close()
	}
	if c.server != nil {
		c.server.Shutdown()
		c.server.WaitForShutdown()
	}
	if c.lock != nil {
		_ = syscall.Flock(int(c.lock.Fd()), syscall.LOCK_UN)
		_ = c.lock.Close()
	}
}

// lockDir creates dir and takes an exclusive lock on dir/LOCK: two
// embedded servers on one directory would corrupt each other's files.
func lockDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("data dir %s is in use by another eventpipe process (to share one store, give it a listen address and point the others at it with url)", dir)
	}
	return f, nil
}
