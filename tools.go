//go:build tools

// Package main's tools.go pins modules that packages under construction will
// import, so `go mod tidy` keeps them. Remove entries as real imports land.
package main

import (
	_ "github.com/chromedp/chromedp"
	_ "github.com/gin-gonic/gin"
	_ "github.com/gorilla/websocket"
	_ "github.com/oklog/ulid/v2"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/spf13/cobra"
	_ "golang.org/x/crypto/bcrypt"
)
