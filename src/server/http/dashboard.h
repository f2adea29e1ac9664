// The dashboard page (GET /dashboard): web/dashboard.html, embedded at build time
// (cmake/dashboard_html.cc.in, CMakeLists.txt), so the server needs no files and no network.
#pragma once

#include <string_view>

namespace encserve::server {

std::string_view DashboardHtml();

}  // namespace encserve::server
