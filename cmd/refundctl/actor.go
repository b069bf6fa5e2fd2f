package main

import (
	"fmt"
	"os"
	"os/user"
	"strings"
	"unicode"

	"github.com/spf13/cobra"
)

// actorFlag adds --actor to a command that changes a refund by hand.
func actorFlag(cmd *cobra.Command, actor *string) {
	cmd.Flags().StringVar(actor, "actor", "", "who you are, for the refund's history (required when running as root or an unknown user)")
}

// resolveActor says who makes a change by hand, for the refund's history:
// the --actor given, with the account refundctl runs as; or that account
// alone when it names a person. Root, or an account the system cannot name
// (a container's numeric user), names no one, so --actor is then required:
// a hand on the money leaves a name.
func resolveActor(flag string) (string, error) {
	flag = strings.TrimSpace(flag)
	if len(flag) > 128 || strings.IndexFunc(flag, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return "", usagef("--actor: at most 128 printable characters")
	}
	account := osAccount()
	switch {
	case flag != "" && account != "":
		return fmt.Sprintf("%s (refundctl, os user %s)", flag, account), nil
	case flag != "":
		return flag + " (refundctl)", nil
	case account != "" && !strings.HasPrefix(account, "root@"):
		return "os user " + account + " (refundctl)", nil
	}
	return "", usagef("missing --actor: say who you are, for the refund's history (refundctl runs as %s, which names no one)",
		orUnknown(account))
}

// osAccount is user@host of the account refundctl runs as, or "" when the
// system cannot name it.
func osAccount() string {
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if name == "" {
		name = os.Getenv("USER")
	}
	if name == "" {
		return ""
	}
	if host, err := os.Hostname(); err == nil && host != "" {
		return name + "@" + host
	}
	return name
}

func orUnknown(account string) string {
	if account == "" {
		return "an account the system cannot name"
	}
	return account
}
