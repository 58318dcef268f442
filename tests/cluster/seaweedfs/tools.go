//go:build tools

// Package tools only records that this module depends on the SeaweedFS server, so that
// `go mod tidy` keeps it and its dependencies in go.sum. install.sh builds the binary with
// `go build github.com/seaweedfs/seaweedfs/weed`.
package tools

import _ "github.com/seaweedfs/seaweedfs/weed"
