package framework

import "github.com/gin-gonic/gin"

// Plugin is an add-on attached with [App.Use]: it binds hooks (under IDs
// prefixed with its name), registers routes, policies or an
// authenticator. It must do nothing at import time.
type Plugin interface {
	// Name is unique among an App's plugins.
	Name() string
	// Setup attaches the plugin to app. It runs once, before serving.
	Setup(app *App) error
}

// RouteMounter is an optional interface for plugins that serve routes
// under the sync mount point (e.g. /sync/watermelon); [App.Mount] calls it
// after the core routes. The group already authenticates: handlers find
// the caller with [PrincipalFrom]. Body limits and content-type checks are
// the plugin's own ([App.DecodeJSON] does both).
type RouteMounter interface {
	MountRoutes(r gin.IRouter)
}

// RootRouteMounter is an optional interface for plugins that serve routes
// outside the sync mount point: sign-in, webhooks, an admin page.
// [App.MountRoot] calls it with the router the application gives
// (usually the engine). The App does not authenticate these routes; a
// handler that needs the caller asks [App.Authenticate]. Handlers
// answer in the protocol's error shape through [HandlerFunc].
type RootRouteMounter interface {
	MountRootRoutes(r gin.IRouter)
}
