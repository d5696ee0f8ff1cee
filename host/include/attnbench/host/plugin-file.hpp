// Checks made on a plugin file before it is handed to dlopen, which maps the file and
// runs its code: a file that is truncated or built for another machine must be an error
// message, not a SIGBUS inside the loader; a file that other users could rewrite must
// not be loaded at all.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace attnbench {

// The problem with an ELF image, or "" when it is a shared object of this machine's
// class, byte order and architecture whose headers, segments and sections all lie
// inside the image. `image` is the whole file.
std::string elf_image_problem(std::string_view image);

// Refuses (plugin_error naming the file and saying how to fix it) a plugin file that is
// not a regular file, is writable by every user, lies in a folder writable by every
// user (or under one that is, unless that one is sticky like /tmp), is larger than
// 1 GiB, or fails elf_image_problem.
void check_plugin_file(const std::filesystem::path& file);

}  // namespace attnbench
