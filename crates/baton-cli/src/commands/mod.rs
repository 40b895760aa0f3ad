//! The commands, one module each. A command uses the context and the output, and
//! `follow` (the one command the others build on); `follow` uses no other command.

pub mod follow;
pub mod logs;
pub mod ls;
pub mod redrive;
pub mod run;
pub mod stop;
