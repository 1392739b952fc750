# Bash completion for paretoprune: commands, options and their values, as the CLI itself suggests them
# (System.CommandLine's [suggest] directive, so it never falls out of step with the commands).
#   source tools/completion/paretoprune.bash        # or copy it to /etc/bash_completion.d/paretoprune
# PARETOPRUNE names the executable when it is not `paretoprune` on the PATH (e.g. PARETOPRUNE="dotnet /opt/pp/paretoprune.dll").
_paretoprune_complete() {
  local word="${COMP_WORDS[COMP_CWORD]}" suggestions
  suggestions=$(${PARETOPRUNE:-paretoprune} "[suggest:${COMP_POINT}]" "${COMP_LINE}" 2>/dev/null) || return 0
  local IFS=$'\n'
  COMPREPLY=($(compgen -W "${suggestions}" -- "${word}"))
}
complete -o default -F _paretoprune_complete paretoprune
