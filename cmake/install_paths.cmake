# Included by install scripts (systemd/CMakeLists.txt): the installed
# directories for the prefix of *this* install run, with GNUInstallDirs' rule
# for the configuration directory (prefix /usr -> /etc, /opt/<pkg> ->
# /etc/opt/<pkg>, anything else -> <prefix>/etc), so a package built for /usr
# puts the configuration in /etc/ringmart and `cmake --install --prefix
# /usr/local` in /usr/local/etc/ringmart.
#
# ringmart_install_paths(BINDIR) sets RINGMART_BINDIR (absolute) and
# RINGMART_SYSCONFDIR (absolute, without DESTDIR: the path the running system sees).
function(ringmart_install_paths bindir)
  set(prefix "${CMAKE_INSTALL_PREFIX}")
  if(prefix STREQUAL "/usr")
    set(sysconfdir "/etc")
  elseif(prefix MATCHES "^/opt/(.+)$")
    set(sysconfdir "/etc/opt/${CMAKE_MATCH_1}")
  else()
    set(sysconfdir "${prefix}/etc")
  endif()
  if(IS_ABSOLUTE "${bindir}")
    set(RINGMART_BINDIR "${bindir}" PARENT_SCOPE)
  else()
    set(RINGMART_BINDIR "${prefix}/${bindir}" PARENT_SCOPE)
  endif()
  set(RINGMART_SYSCONFDIR "${sysconfdir}" PARENT_SCOPE)
endfunction()
