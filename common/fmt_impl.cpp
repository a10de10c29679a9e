// common/fmt_impl.cpp: the compiled half of the fmt library, in libcommon. Debian ships fmt
// as a shared library only; with its definitions here every program can be linked
// statically (Makefile: STATIC), so that a connection or a message costs no dynamic loading.
// The header defines the functions; the lines below instantiate the templates that the
// header declares extern (those of char only: tikimail formats no wide strings).
#include <fmt/format-inl.h>

FMT_BEGIN_NAMESPACE
namespace detail {

template FMT_API auto thousands_sep_impl<char>(locale_ref) -> thousands_sep_result<char>;
template FMT_API auto decimal_point_impl(locale_ref) -> char;
template FMT_API locale_ref::locale_ref(const std::locale& loc);
template FMT_API auto locale_ref::get<std::locale>() const -> std::locale;

}  // namespace detail
FMT_END_NAMESPACE
