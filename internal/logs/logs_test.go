package logs

import (
	"bytes"
	"encoding/json"
	stdlog "log"
	"os"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
)

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]logrus.Level{
		"": logrus.InfoLevel, "debug": logrus.DebugLevel, "info": logrus.InfoLevel, "warn": logrus.WarnLevel,
		"warning": logrus.WarnLevel, "error": logrus.ErrorLevel, " WARN\n": logrus.WarnLevel, "Debug": logrus.DebugLevel,
	} {
		if got, err := ParseLevel(in); err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"trace", "fatal", "panic", "verbose", "warnings", "0"} {
		_, err := ParseLevel(in)
		if err == nil || err.Error() != `LOG_LEVEL="`+in+`": want debug, info, warn (or warning) or error` {
			t.Errorf("ParseLevel(%q): err = %v, want the refusal naming the accepted words", in, err)
		}
	}
	if _, err := New(&bytes.Buffer{}, "trace"); err == nil {
		t.Error("New accepted LOG_LEVEL=trace")
	}
}

// What the log package and logrus's standard logger print comes out as JSON
// lines of the same stream, at the level asked for.
func TestOneJSONStream(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, "warning")
	if err != nil || log.GetLevel() != logrus.WarnLevel {
		t.Fatalf("warning: %v, %v", log.GetLevel(), err)
	}
	t.Cleanup(func() { // New set process-wide loggers: give them back stderr
		stdlog.SetOutput(os.Stderr)
		stdlog.SetFlags(stdlog.LstdFlags)
		logrus.SetOutput(os.Stderr)
	})

	log.Info("below the level")
	log.Error("ours")
	stdlog.Printf("Failed to collect metrics data: %v", "dial tcp: connection refused")
	logrus.Info("below the level too")
	logrus.WithField("env", "REFUNDQ_ACCEPT_REDIS_LOSS").Error("keeper")

	var got []map[string]any
	for _, line := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("a log line is not JSON: %q", line)
		}
		if m["time"] == nil {
			t.Errorf("no time in %q", line)
		}
		got = append(got, m)
	}
	want := []struct{ level, msg, component string }{
		{"error", "ours", ""},
		{"warning", "Failed to collect metrics data: dial tcp: connection refused", "log"},
		{"error", "keeper", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(got), len(want), buf.String())
	}
	for i, w := range want {
		c, _ := got[i]["component"].(string)
		if got[i]["level"] != w.level || got[i]["msg"] != w.msg || c != w.component {
			t.Errorf("line %d = %v, want level %s, msg %q, component %q", i+1, got[i], w.level, w.msg, w.component)
		}
	}
}
