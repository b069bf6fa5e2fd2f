//go:build !unix

package main

import "os"

// lockDir creates dir. Without flock (Windows, where redis-server is not
// packaged anyway) nothing stops a second dev-redis on the same directory.
func lockDir(dir string) (unlock func(), err error) {
	return func() {}, os.MkdirAll(dir, 0o755)
}
