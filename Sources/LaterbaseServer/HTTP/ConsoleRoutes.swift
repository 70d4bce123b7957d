import HTTPTypes
import Hummingbird

/// GET /console: the console's HTML, JavaScript and CSS, compiled into the binary. They need no
/// token; the page asks the API with the token a person pastes (kept in the tab's sessionStorage).
struct ConsoleRoutes {
    func register(on router: Router<LaterbaseRequestContext>) {
        let files: [(route: Route, bytes: [UInt8], type: String)] = [
            (.console, PackageResources.index_html, "text/html; charset=utf-8"),
            (.consoleScript, PackageResources.console_js, "text/javascript; charset=utf-8"),
            (.consoleStyle, PackageResources.console_css, "text/css; charset=utf-8"),
        ]
        for file in files {
            router.on(file.route) { _, _ -> Response in
                var response = Response.json(file.bytes, contentType: file.type)
                // Nothing but this node's own files and API (CONTRACT: nodes are often offline),
                // in no other site's frame (clickjacking), and each file only as its own type.
                response.headers[.contentSecurityPolicy] =
                    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'"
                response.headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
                response.headers[.cacheControl] = "no-cache"
                return response
            }
        }
    }
}
