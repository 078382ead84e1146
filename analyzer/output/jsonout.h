/* JSON documents written out as they are walked: what json-c's json_object_to_json_string_ext
 * with JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE prints, byte for byte, without
 * first building the whole text in memory (go-sqlite3's suite: an 11 MB report, whose string json-c
 * grew by doubling, page by fresh page, then copied to the file: ~45 ms of the wait after the
 * program; tests/unit/test_report.c compares both on every kind of value). */
#ifndef CGOSCOPE_JSONOUT_H
#define CGOSCOPE_JSONOUT_H

#include <json-c/json.h>

/* Writes doc and a newline to fd. Returns 0, or -1 with errno set (a short write: ENOSPC). */
int jsonout_write_fd(int fd, json_object *doc);

#endif
