// Package logs sets up the one JSON log stream of a refundq process: logrus
// at the level LOG_LEVEL names, and go-redis's own messages (a lost
// connection, a failover) written through it rather than as plain text.
package logs

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"
)

// New returns a JSON logger writing to w at the level level names ("" is
// info), and makes it go-redis's logger. An unknown level is an error: a
// typo must not silently log at another level.
func New(w io.Writer, level string) (*logrus.Logger, error) {
	log := logrus.New()
	log.SetFormatter(&logrus.JSONFormatter{})
	log.SetOutput(w)
	switch strings.ToLower(strings.TrimSpace(level)) {
	case "":
	case "debug", "info", "warn", "warning", "error":
		lvl, _ := logrus.ParseLevel(level)
		log.SetLevel(lvl)
	default:
		return log, fmt.Errorf("LOG_LEVEL=%q: want debug, info, warn or error", level)
	}
	redis.SetLogger(redisLogger{log.WithField("component", "go-redis")})
	return log, nil
}

// redisLogger is go-redis's logger interface on logrus.
type redisLogger struct{ l *logrus.Entry }

func (r redisLogger) Printf(_ context.Context, format string, v ...any) {
	r.l.Warn(fmt.Sprintf(format, v...))
}
