"""The report itself: drafting from a template, rendering, exports, images."""
