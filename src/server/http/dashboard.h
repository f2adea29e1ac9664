// The dashboard page (GET /dashboard): web/dashboard.html, embedded at build time
// (cmake/embed_file.cmake), so the server needs no files and no network to serve it.
#pragma once

#include <string_view>

namespace encserve::server {

std::string_view DashboardHtml();

}  // namespace encserve::server
