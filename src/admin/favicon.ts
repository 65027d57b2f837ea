/**
 * The dashboard's icon, served at /favicon.ico (what browsers ask for
 * unprompted) as SVG: three lines of traffic on srvgate's dark ground, the
 * colours of the dashboard's "up" cells. A few hundred bytes, no file to ship.
 */
export const FAVICON_SVG = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="7" fill="#1d2330"/><path d="M8 10h16M8 16h11M8 22h16" stroke="#2f9e55" stroke-width="3.2" stroke-linecap="round"/></svg>'
