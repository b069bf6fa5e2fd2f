// Package logs sets up the one JSON log stream of a refundq process: logrus
// at the level LOG_LEVEL names, with what libraries print on their own
// written through it rather than as plain text: go-redis's messages (a lost
// connection, a failover), the standard library log package's (asynq's
// x/metrics, asynqmon, net/http), and logrus's standard logger (which
// enqueue's durability keeper uses).
package logs

import (
	"context"
	"fmt"
	"io"
	stdlog "log"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"
)

// ParseLevel reads LOG_LEVEL: debug, info, warn (or warning) or error, in
// any case; "" is info. Anything else is an error naming those words: a
// typo must not silently log at another level. trace, fatal and panic are
// refused too: nothing in refundq logs at trace, so trace would show what
// debug shows while promising more, and fatal or panic would hide errors.
func ParseLevel(s string) (logrus.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "":
		return logrus.InfoLevel, nil
	case "debug":
		return logrus.DebugLevel, nil
	case "info":
		return logrus.InfoLevel, nil
	case "warn", "warning":
		return logrus.WarnLevel, nil
	case "error":
		return logrus.ErrorLevel, nil
	}
	return logrus.InfoLevel, fmt.Errorf("LOG_LEVEL=%q: want debug, info, warn (or warning) or error", s)
}

// New returns a JSON logger writing to w at the level level names (see
// ParseLevel), and makes it the process's one log stream: go-redis's
// logger, the standard library log package's default logger, and logrus's
// standard logger all write JSON lines to w at that level. Those are
// process-wide, so a binary calls New once, in main. On a bad level it
// returns the error and a logger at info, to report it with.
func New(w io.Writer, level string) (*logrus.Logger, error) {
	lvl, err := ParseLevel(level)
	log := logrus.New()
	log.SetFormatter(&logrus.JSONFormatter{})
	log.SetOutput(w)
	log.SetLevel(lvl)

	std := logrus.StandardLogger()
	std.SetFormatter(&logrus.JSONFormatter{})
	std.SetOutput(w)
	std.SetLevel(lvl)
	redis.SetLogger(redisLogger{log.WithField("component", "go-redis")})
	// Whoever prints with the log package reports something that went
	// wrong and was not returned to us (a metrics collection that failed,
	// a TLS handshake refused): a warning. logrus adds the time.
	stdlog.SetFlags(0)
	stdlog.SetPrefix("")
	stdlog.SetOutput(stdWriter{log.WithField("component", "log")})
	return log, err
}

// redisLogger is go-redis's logger interface on logrus.
type redisLogger struct{ l *logrus.Entry }

func (r redisLogger) Printf(_ context.Context, format string, v ...any) {
	r.l.Warn(fmt.Sprintf(format, v...))
}

// stdWriter takes the log package's output: one Write per message, ending
// in a newline.
type stdWriter struct{ l *logrus.Entry }

func (s stdWriter) Write(p []byte) (int, error) {
	s.l.Warn(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
