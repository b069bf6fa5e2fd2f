package main

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/internal/redisproc"
	"github.com/refundq/refundq/internal/redistest"
)

const tok = "tok_cfg_0123456789abcdef0123456789abcdef"

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func TestConfigDefaults(t *testing.T) {
	c, err := loadConfig(env(map[string]string{"API_TOKENS": tok}))
	if err != nil {
		t.Fatal(err)
	}
	if c.listen != "127.0.0.1:8080" || c.writable || c.queue != "default" || c.prefix != "refundq:" || c.level != logrus.InfoLevel {
		t.Fatalf("defaults = %+v", c)
	}
}

func TestConfigTokensFromFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(f, []byte("# api clients\n"+tok+"\n\n"+strings.Repeat("z", 40)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadConfig(env(map[string]string{"API_TOKENS_FILE": f, "API_MONITORING_WRITABLE": "true"})); err != nil {
		t.Fatal(err)
	}
}

func TestConfigRefusals(t *testing.T) {
	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"no token":          {map[string]string{}, "no API token"},
		"both token vars":   {map[string]string{"API_TOKENS": tok, "API_TOKENS_FILE": "/x"}, "not both"},
		"missing file":      {map[string]string{"API_TOKENS_FILE": "/nonexistent/tokens"}, "API_TOKENS_FILE"},
		"short token":       {map[string]string{"API_TOKENS": "letmein"}, "at least 32"},
		"writable not bool": {map[string]string{"API_TOKENS": tok, "API_MONITORING_WRITABLE": "yes please"}, "API_MONITORING_WRITABLE"},
		"bad log level":     {map[string]string{"API_TOKENS": tok, "LOG_LEVEL": "loud"}, "LOG_LEVEL"},
		"trace":             {map[string]string{"API_TOKENS": tok, "LOG_LEVEL": "trace"}, "want debug, info, warn (or warning) or error"},
		"bad listen":        {map[string]string{"API_TOKENS": tok, "API_LISTEN": "8080"}, "API_LISTEN"},
	} {
		_, err := loadConfig(env(tc.env))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one mentioning %q", name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "letmein") {
			t.Errorf("%s: the error repeats the token", name)
		}
	}
}

func TestRunStopsWhenRedisDoesNotAnswer(t *testing.T) {
	log := logrus.New()
	err := run(log, env(map[string]string{"API_TOKENS": tok, "REDIS_URL": "redis://127.0.0.1:1/0"}))
	if err == nil || !strings.Contains(err.Error(), "does not answer") {
		t.Fatalf("err = %v, want Redis named as not answering", err)
	}
}

// A taken API_LISTEN names the variable, as HEALTH_LISTEN does for the
// worker, and says what to do.
func TestListenErrorNamesAPIListen(t *testing.T) {
	rds := redistest.Server(t, redisproc.Shipped)
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	addr := held.Addr().String()
	log := logrus.New()
	log.SetOutput(io.Discard)
	err = run(log, env(map[string]string{"API_TOKENS": tok, "REDIS_URL": "redis://" + rds.Addr + "/0", "API_LISTEN": addr}))
	want := "API_LISTEN=" + addr + ": address already in use: another refund-api on this host? give each refund-api its own API_LISTEN, e.g. API_LISTEN="
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("err = %v\nwant it to start %q", err, want)
	}
}
