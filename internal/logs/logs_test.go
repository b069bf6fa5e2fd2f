package logs

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestLevelsAndRedisLines(t *testing.T) {
	if _, err := New(&bytes.Buffer{}, "verbose"); err == nil || !strings.Contains(err.Error(), "LOG_LEVEL") {
		t.Fatalf("unknown level accepted: %v", err)
	}
	var buf bytes.Buffer
	log, err := New(&buf, "warn")
	if err != nil || log.GetLevel().String() != "warning" {
		t.Fatalf("warn: %v, %v", log.GetLevel(), err)
	}
	// go-redis's own message comes out as one JSON line.
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer rdb.Close()
	rdb.Ping(context.Background())
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("a log line is not JSON: %q", line)
		}
	}
}
