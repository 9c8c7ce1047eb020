//go:build tools

// Package engine pins the Pulumi CLI that the engine tests run: .ci/engine builds it from here.
package engine

import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
